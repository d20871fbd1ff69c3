"""Customer commands: tie another address to a customer (so its replies join their cases), list, untie."""

from __future__ import annotations

import click

from triage.cli.common import _agent, agent_option, cli, emit_json, json_option, open_store, settings_from
from triage.errors import NotFound
from triage.store import utcnow


@cli.group()
def customer() -> None:
    """Addresses that belong to one customer: a reply from one of them joins that customer's cases."""


@customer.command("link")
@click.argument("address")
@click.argument("customer_address", metavar="CUSTOMER")
@agent_option
@click.pass_context
def link(ctx: click.Context, address: str, customer_address: str, agent: str | None) -> None:
    """Tie ADDRESS to the customer at CUSTOMER (an address triage has mail from).

    Mail from ADDRESS then counts as that customer's, and its replies join their cases.

    Example: triage customer link ann.lee@work.example ann@example.com
    """
    address, customer_address = address.strip().lower(), customer_address.strip().lower()
    if "@" not in address:
        raise click.BadParameter(f"not an email address: {address!r}", param_hint="ADDRESS")
    with open_store(settings_from(ctx)) as store, store.write():
        customer_id = store.customer_id(customer_address) or store.linked_customer(customer_address)
        if customer_id is None:
            raise NotFound(f"no customer {customer_address}: give the address of someone triage has mail from")
        if store.customer_id(address) == customer_id:
            raise click.BadParameter(f"{address} is that customer's own address", param_hint="ADDRESS")
        store.link_address(address, customer_id, _agent(agent, store), utcnow())
        # the audit event names the customer by id only: `triage forget` leaves no address behind
        store.event("customer-linked", _agent(agent, store), utcnow(), customer=customer_id)
    click.echo(f"{address} is now {customer_address}'s: its replies join their cases.")


@customer.command("unlink")
@click.argument("address")
@agent_option
@click.pass_context
def unlink(ctx: click.Context, address: str, agent: str | None) -> None:
    """Untie ADDRESS from the customer it was linked to.

    Example: triage customer unlink ann.lee@work.example
    """
    address = address.strip().lower()
    with open_store(settings_from(ctx)) as store, store.write():
        customer_id = store.linked_customer(address)
        if customer_id is None or not store.unlink_address(address):
            raise NotFound(f"{address} is not linked to a customer")
        store.event("customer-unlinked", _agent(agent, store), utcnow(), customer=customer_id)
    click.echo(f"{address} is no longer linked to a customer.")


@customer.command("show")
@click.argument("customer_address", metavar="CUSTOMER")
@json_option
@click.pass_context
def show(ctx: click.Context, customer_address: str, as_json: bool) -> None:
    """The addresses tied to the customer at CUSTOMER.

    Example: triage customer show ann@example.com
    """
    customer_address = customer_address.strip().lower()
    with open_store(settings_from(ctx)) as store:
        customer_id = store.customer_id(customer_address)
        if customer_id is None:
            raise NotFound(f"no customer {customer_address}")
        linked = store.linked_addresses(customer_id)
    if as_json:
        emit_json({"customer": customer_address, "addresses": linked})
        return
    click.echo(f"{customer_address}" + (f": also {', '.join(linked)}" if linked else ": no other addresses"))
