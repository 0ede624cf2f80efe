// Voxboard's small client-side layer. Pages work without it; it only enhances.
// Only one preview plays at a time: starting a voice pauses the others.
document.addEventListener("play", (event) => {
  if (!(event.target instanceof HTMLAudioElement)) return;
  for (const audio of document.querySelectorAll("audio")) {
    if (audio !== event.target && !audio.paused) audio.pause();
  }
}, true);

// htmx leaves 4xx answers unswapped. A block marked `data-swap-errors` answers a
// refusal (403, 409, 410, 422) with itself and the reason inline, so show it.
document.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  const target = event.detail.target;
  if ([403, 409, 410, 422].includes(status) && target && target.closest("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Copy buttons (`data-copy="<input id>"`) start hidden: they need JavaScript. Without
// it the input is readonly and selectable.
function revealCopyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) button.hidden = false;
}
document.addEventListener("DOMContentLoaded", () => revealCopyButtons(document));
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
