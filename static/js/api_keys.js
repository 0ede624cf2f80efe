// API keys page: bring a new key into view and focus it (copying is app.js's job).
// Everything works without this file: the new key is a readonly, selectable field.
(() => {
  "use strict";

  function focusNewKey(root) {
    const secret = root.querySelector("#new-key-secret");
    if (secret) {
      secret.scrollIntoView({ block: "center" });
      secret.focus();
    }
  }
  focusNewKey(document);
  document.addEventListener("htmx:load", (event) => focusNewKey(event.target));
})();
