// Keyboard shortcuts for the review page. Served from the app ('self' under the CSP), never inline.
// Queue: j/k move the selection, e or Enter opens the selected draft to edit, / goes to the search box.
// Case page: j/k go to the next/previous waiting draft, e puts the cursor in the reply,
// a approves and sends after a confirmation (the text in the box, as the button does).
(function () {
  "use strict";

  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function queueKeys(table) {
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-draft]"));
    var at = -1;
    function select(i) {
      if (!rows.length) { return; }
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach(function (row, j) {
        row.classList.toggle("selected", j === at);
        row.setAttribute("aria-selected", j === at ? "true" : "false");
      });
      rows[at].scrollIntoView({block: "nearest"});
    }
    return function (key) {
      if (key === "j") { select(at + 1); return true; }
      if (key === "k") { select(at < 0 ? 0 : at - 1); return true; }
      if ((key === "e" || key === "Enter") && at >= 0) {
        var link = rows[at].querySelector("a.open");
        if (link) { window.location.href = link.href + "#draft-body"; }
        return true;
      }
      return false;
    };
  }

  function caseKeys() {
    return function (key) {
      var link;
      if (key === "j" || key === "k") {
        link = document.querySelector(key === "j" ? "a[rel=next]" : "a[rel=prev]");
        if (link) { window.location.href = link.href; }
        return true;
      }
      var box = document.getElementById("draft-body");
      if (key === "e" && box && box.tagName === "TEXTAREA") { box.focus(); return true; }
      var approve = document.getElementById("approve");
      if (key === "a" && approve) {
        var to = (document.getElementById("reply-to") || {}).textContent || "the customer";
        if (window.confirm("Approve and send this reply to " + to.trim() + "?")) { approve.click(); }
        return true;
      }
      return false;
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("queue");
    var handle = table ? queueKeys(table) : (document.getElementById("drafts-nav") ? caseKeys() : null);
    if (window.location.hash === "#draft-body") {
      var box = document.getElementById("draft-body");
      if (box && box.tagName === "TEXTAREA") { box.focus(); }
    }
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
      if (event.key === "/") {
        var search = document.getElementById("search");
        if (search) { search.focus(); event.preventDefault(); }
        return;
      }
      if (handle && handle(event.key)) { event.preventDefault(); }
    });
  });
}());
