// Voxboard's small client-side layer. Pages work without it; it only enhances.
// Only one preview plays at a time: starting a voice pauses the others.
document.addEventListener("play", (event) => {
  if (!(event.target instanceof HTMLAudioElement)) return;
  for (const audio of document.querySelectorAll("audio")) {
    if (audio !== event.target && !audio.paused) audio.pause();
  }
}, true);
