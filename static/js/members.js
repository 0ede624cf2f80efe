// Members page enhancements. Everything works without this file.

// htmx leaves 4xx answers unswapped; the members page's blocks answer a refusal
// (403, 409, 410, 422) with themselves plus the reason, so show those too.
document.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  if ([403, 409, 410, 422].includes(status) && event.target.closest("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// "Copy link" buttons start hidden (they need JavaScript) and copy their input's value.
function revealCopyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) button.hidden = false;
}
revealCopyButtons(document);
document.addEventListener("htmx:load", (event) => revealCopyButtons(event.target));

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  if (!input) return;
  input.focus();
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Press Ctrl+C to copy";
  }
});

document.addEventListener("focusin", (event) => {
  if (event.target.matches("input[data-select-on-focus]")) event.target.select();
});
