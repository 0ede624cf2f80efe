// The history page's enhancements. Without this file the page still works: the filter
// form has a button, bulk actions post a plain form (deleting asks on a page first),
// each row's Delete opens a confirmation page, and "Older generations" is a link.
(() => {
  "use strict";

  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

  // Tick boxes, the "all matching" box and the bulk buttons of one bulk form agree.
  function syncSelection(form) {
    if (!form) return;
    const boxes = [...form.querySelectorAll("[data-row-select]")];
    const ticked = boxes.filter((box) => box.checked).length;
    const allMatching = form.querySelector("[data-all-matching]")?.checked ?? false;
    const page = form.querySelector("[data-select-page]");
    if (page) {
      page.checked = boxes.length > 0 && ticked === boxes.length;
      page.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    for (const button of form.querySelectorAll("[data-needs-selection]")) {
      button.disabled = !allMatching && ticked === 0;
    }
    const count = form.querySelector("[data-selected-count]");
    if (count) {
      count.textContent = allMatching
        ? "All matching generations"
        : ticked ? `${plural(ticked, "generation")} selected` : "";
    }
  }

  function say(message, kind = "success") {
    const notice = document.querySelector("[data-history-notice]");
    if (!notice) return;
    const p = document.createElement("p");
    p.className = `notice notice-${kind}`;
    p.setAttribute("role", kind === "error" ? "alert" : "status");
    p.textContent = message;
    notice.replaceChildren(p);
  }

  function enhance(root) {
    const scope = root.querySelectorAll ? root : document;
    for (const el of scope.querySelectorAll("[data-js-only]")) el.hidden = false;
    if (window.htmx) {
      // Typing and the fields fetch results by themselves; the button isn't needed.
      for (const el of scope.querySelectorAll("[data-history-filters] [data-js-hide]")) {
        el.hidden = true;
      }
    }
    const form = root.closest ? root.closest("[data-history-bulk]") : null;
    syncSelection(form || scope.querySelector("[data-history-bulk]"));
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    const form = target.closest("[data-history-bulk]");
    if (!form) return;
    if (target.matches("[data-select-page]")) {
      for (const box of form.querySelectorAll("[data-row-select]")) box.checked = target.checked;
    }
    syncSelection(form);
  });

  if (!window.htmx) {
    enhance(document);
    return;
  }

  // htmx.onLoad runs for the page itself and for everything htmx swaps in (new rows too).
  window.htmx.onLoad(enhance);

  // Keep pushed URLs short: leave blank filters out of the query string.
  document.addEventListener("htmx:configRequest", (event) => {
    if (!event.detail.elt.closest("[data-history-filters]")) return;
    const params = event.detail.parameters;
    for (const key of [...params.keys()]) {
      if (params.get(key) === "") params.delete(key);
    }
  });

  // Ask a question that says how much a bulk delete removes.
  document.addEventListener("htmx:confirm", (event) => {
    const button = event.detail.elt;
    if (!button.matches || !button.matches("[data-bulk-delete]")) return;
    event.preventDefault();
    const form = button.form;
    const all = form.querySelector("[data-all-matching]")?.checked;
    const ticked = form.querySelectorAll("[data-row-select]:checked").length;
    const what = all ? "every generation matching these filters" : plural(ticked, "generation");
    if (window.confirm(`Delete ${what} and the audio? This can't be undone.`)) {
      event.detail.issueRequest(true);
    }
  });

  // The results block answers a refusal (bad dates, nothing selected) with itself and
  // the reason, status 400: show it like any other answer.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    if (status === 400 && event.detail.target.matches("[data-history-results]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Any other failure (a row deleted elsewhere meanwhile, storage down): say so.
  document.addEventListener("htmx:responseError", (event) => {
    if (!event.detail.elt.closest("[data-history-results]")) return;
    const page = new DOMParser().parseFromString(event.detail.xhr.responseText, "text/html");
    const text = page.body.textContent.trim().replace(/\s+/g, " ");
    say(text || "That didn't work. Reload the page and try again.", "error");
  });

  document.addEventListener("generation-deleted", () => {
    say("The generation was deleted.");
    // The row leaves after this event; count the selection once it has.
    setTimeout(() => syncSelection(document.querySelector("[data-history-bulk]")), 50);
  });
})();
