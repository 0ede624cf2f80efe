// The voice form's enhancements: an in-browser recorder, an early size check, upload
// progress. The form works without this file (a plain multipart POST).
//
// This one file is loaded twice: by a <script> tag on the page, and by
// audioWorklet.addModule() as the module that captures microphone samples. Keeping
// both in one same-origin file needs nothing more than the CSP's script-src 'self'.

if (typeof registerProcessor === "function") {
  // ---------------------------------------------------------------- audio thread
  // Hands the main thread batches of mono samples (about 43 ms at 48 kHz).
  const BATCH = 2048;
  registerProcessor("voxboard-capture", class extends AudioWorkletProcessor {
    constructor() {
      super();
      this.batch = new Float32Array(BATCH);
      this.filled = 0;
    }

    process(inputs) {
      const channel = inputs[0] && inputs[0][0];
      if (!channel) return true;
      for (let i = 0; i < channel.length; i++) {
        this.batch[this.filled++] = channel[i];
        if (this.filled === BATCH) {
          this.port.postMessage(this.batch);
          this.batch = new Float32Array(BATCH);
          this.filled = 0;
        }
      }
      return true;
    }
  });
} else {
  (() => {
    "use strict";

    // The server stores what it is sent; 24 kHz mono 16-bit keeps five minutes near
    // 14 MB, under the 20 MB limit, and is plenty for a speaking voice.
    const TARGET_RATE = 24000;
    const SCRIPT_URL = document.currentScript ? document.currentScript.src : null;

    // ------------------------------------------------------------------- encoding

    /** Encode mono samples (-1..1) as a 16-bit PCM WAV Blob. */
    function encodeWav(samples, sampleRate) {
      const bytes = samples.length * 2;
      const view = new DataView(new ArrayBuffer(44 + bytes));
      const text = (offset, value) => {
        for (let i = 0; i < value.length; i++) view.setUint8(offset + i, value.charCodeAt(i));
      };
      text(0, "RIFF");
      view.setUint32(4, 36 + bytes, true);
      text(8, "WAVE");
      text(12, "fmt ");
      view.setUint32(16, 16, true); // size of the fmt chunk
      view.setUint16(20, 1, true); // PCM
      view.setUint16(22, 1, true); // mono
      view.setUint32(24, sampleRate, true);
      view.setUint32(28, sampleRate * 2, true); // bytes per second
      view.setUint16(32, 2, true); // bytes per frame
      view.setUint16(34, 16, true); // bits per sample
      text(36, "data");
      view.setUint32(40, bytes, true);
      for (let i = 0, offset = 44; i < samples.length; i++, offset += 2) {
        const s = Math.max(-1, Math.min(1, samples[i] || 0));
        view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
      }
      return new Blob([view.buffer], { type: "audio/wav" });
    }

    /** Resample with the browser's own resampler (an offline render). */
    async function resample(samples, fromRate, toRate) {
      if (fromRate === toRate || samples.length === 0) return samples;
      const frames = Math.ceil((samples.length * toRate) / fromRate);
      const offline = new OfflineAudioContext(1, frames, toRate);
      const buffer = offline.createBuffer(1, samples.length, fromRate);
      buffer.copyToChannel(samples, 0);
      const source = offline.createBufferSource();
      source.buffer = buffer;
      source.connect(offline.destination);
      source.start();
      return (await offline.startRendering()).getChannelData(0);
    }

    function join(chunks, length) {
      const all = new Float32Array(length);
      let offset = 0;
      for (const chunk of chunks) {
        all.set(chunk, offset);
        offset += chunk.length;
      }
      return all;
    }

    function clock(seconds) {
      const whole = Math.floor(seconds);
      return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
    }

    function megabytes(size) {
      return `${(size / (1024 * 1024)).toFixed(1)} MB`;
    }

    // The encoder is reachable for tests and for anyone scripting the page.
    window.VoxboardRecorder = { encodeWav, resample, TARGET_RATE };

    // ------------------------------------------------------------------- recorder

    class Recorder {
      constructor(root, fileInput) {
        this.root = root;
        this.fileInput = fileInput;
        this.minSeconds = Number(root.dataset.minSeconds || 10);
        this.maxSeconds = Number(root.dataset.maxSeconds || 300);
        this.$ = (name) => root.querySelector(`[data-record-${name}]`);
        this.previewUrl = null;
        this.$("start").addEventListener("click", () => this.start());
        this.$("stop").addEventListener("click", () => this.stop());
        this.$("again").addEventListener("click", () => this.reset(true));
        // Choosing a file after recording means the file wins.
        fileInput.addEventListener("change", () => {
          if (this.state === "recorded") this.reset(false, "Using the file you chose instead of the recording.");
        });
        this.setState("idle");
        root.hidden = false;
      }

      setState(state) {
        this.state = state;
        this.root.dataset.state = state;
        this.$("start").hidden = state !== "idle";
        this.$("stop").hidden = state !== "recording";
        this.$("again").hidden = state !== "recorded";
        this.$("start").disabled = false;
      }

      say(message) {
        this.$("status").textContent = message;
      }

      async start() {
        this.$("start").disabled = true;
        this.say("Asking for the microphone…");
        try {
          this.stream = await navigator.mediaDevices.getUserMedia({
            audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
          });
          this.context = new AudioContext();
          await this.context.audioWorklet.addModule(SCRIPT_URL);
        } catch (error) {
          this.release();
          this.setState("idle");
          this.say(this.explain(error));
          return;
        }
        this.chunks = [];
        this.frames = 0;
        this.level = 0;
        const source = this.context.createMediaStreamSource(this.stream);
        this.node = new AudioWorkletNode(this.context, "voxboard-capture", {
          numberOfInputs: 1,
          numberOfOutputs: 0,
          channelCount: 1,
          channelCountMode: "explicit",
        });
        this.node.port.onmessage = (event) => this.take(event.data);
        source.connect(this.node);
        this.setState("recording");
        this.say(`Recording… read aloud at your normal pace. Stop after at least ${this.minSeconds} seconds.`);
      }

      take(batch) {
        if (this.state !== "recording") return;
        this.chunks.push(batch);
        this.frames += batch.length;
        let peak = 0;
        for (let i = 0; i < batch.length; i++) peak = Math.max(peak, Math.abs(batch[i]));
        // Rise at once, fall slowly, like a studio meter.
        this.level = Math.max(peak, this.level * 0.9);
        this.$("level").value = Math.min(1, this.level);
        const seconds = this.frames / this.context.sampleRate;
        this.$("elapsed").textContent = clock(seconds);
        if (seconds >= this.maxSeconds) this.stop();
      }

      async stop() {
        if (this.state !== "recording") return;
        this.setState("encoding");
        const rate = this.context.sampleRate;
        const seconds = this.frames / rate;
        const samples = join(this.chunks, this.frames);
        this.release();
        this.$("level").value = 0;
        this.say("Preparing the recording…");
        const wav = encodeWav(await resample(samples, rate, TARGET_RATE), TARGET_RATE);
        this.previewUrl = URL.createObjectURL(wav);
        const preview = this.$("preview");
        preview.src = this.previewUrl;
        preview.hidden = false;
        this.setState("recorded");
        if (seconds < this.minSeconds) {
          this.clearFile();
          this.say(`That was ${clock(seconds)}: too short. A voice needs at least ${this.minSeconds} seconds; record again.`);
          return;
        }
        // The recording travels in the same file field as an upload, so it passes the
        // same checks on the server.
        const file = new File([wav], `recording-${new Date().toISOString().slice(0, 19).replace(/:/g, "-")}.wav`, { type: "audio/wav" });
        const transfer = new DataTransfer();
        transfer.items.add(file);
        this.fileInput.files = transfer.files;
        this.fileInput.dispatchEvent(new CustomEvent("voxboard:recorded", { bubbles: true }));
        this.say(`Recorded ${clock(seconds)} (${megabytes(wav.size)}). Listen back, then save the form, or record again.`);
      }

      reset(clearFile, message) {
        if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
        this.previewUrl = null;
        const preview = this.$("preview");
        preview.removeAttribute("src");
        preview.hidden = true;
        this.$("elapsed").textContent = "0:00";
        if (clearFile) this.clearFile();
        this.setState("idle");
        this.say(message || `Read any text aloud at your normal pace for at least ${this.minSeconds} seconds.`);
      }

      clearFile() {
        this.fileInput.value = "";
      }

      release() {
        if (this.node) this.node.port.onmessage = null;
        if (this.stream) for (const track of this.stream.getTracks()) track.stop();
        if (this.context) this.context.close();
        this.node = this.stream = this.context = null;
      }

      explain(error) {
        const name = error && error.name;
        if (name === "NotAllowedError" || name === "SecurityError") {
          return "The browser did not allow the microphone. Allow it for this site, or upload a file instead.";
        }
        if (name === "NotFoundError" || name === "OverconstrainedError") {
          return "No microphone was found. Connect one, or upload a file instead.";
        }
        if (name === "NotReadableError") {
          return "The microphone is busy in another application. Close it there and try again.";
        }
        return "Recording isn't available in this browser. Upload a file instead.";
      }
    }

    function canRecord() {
      return Boolean(
        SCRIPT_URL &&
          window.isSecureContext &&
          navigator.mediaDevices &&
          navigator.mediaDevices.getUserMedia &&
          window.AudioWorkletNode &&
          window.OfflineAudioContext &&
          typeof DataTransfer === "function"
      );
    }

    // ----------------------------------------------------------------- the form

    /** Say no to a file over the limit before uploading it (the server says so too). */
    function checkSize(input) {
      const file = input.files && input.files[0];
      const max = Number(input.dataset.maxBytes || 0);
      const error = document.getElementById(`${input.id}-error`);
      const tooBig = Boolean(file && max && file.size > max);
      if (error && (tooBig || error.dataset.client)) {
        error.hidden = !tooBig;
        error.textContent = tooBig
          ? `This file is ${megabytes(file.size)}; the limit is ${input.dataset.maxLabel}. MP3, FLAC or OGG hold the same audio in far fewer bytes.`
          : "";
        if (tooBig) error.dataset.client = "1";
        else delete error.dataset.client;
      }
      // Leave a server's verdict alone unless this check has one of its own.
      if (tooBig) input.setAttribute("aria-invalid", "true");
      else if (!error || !error.textContent.trim()) input.removeAttribute("aria-invalid");
      return !tooBig;
    }

    function enhance(root) {
      for (const form of root.querySelectorAll("form[data-voice-form]")) {
        const input = form.querySelector("input[type=file][data-max-bytes]");
        if (!input || input.dataset.enhanced) continue;
        input.dataset.enhanced = "1";
        input.addEventListener("change", () => checkSize(input));
        input.addEventListener("voxboard:recorded", () => checkSize(input));
        const recorder = form.querySelector("[data-recorder]");
        if (recorder && canRecord()) new Recorder(recorder, input);
      }
    }

    function voiceForm(event) {
      return event.target instanceof Element ? event.target.closest("form[data-voice-form]") : null;
    }

    document.addEventListener("htmx:beforeRequest", (event) => {
      const form = voiceForm(event);
      if (!form) return;
      const input = form.querySelector("input[type=file][data-max-bytes]");
      if (input && !checkSize(input)) {
        event.preventDefault();
        input.focus();
        return;
      }
      const progress = form.querySelector("[data-upload-progress]");
      if (progress && input && input.files && input.files.length) {
        progress.value = 0;
        progress.hidden = false;
      }
    });

    document.addEventListener("htmx:xhr:progress", (event) => {
      const form = voiceForm(event);
      const progress = form && form.querySelector("[data-upload-progress]");
      if (progress && event.detail.lengthComputable) {
        progress.value = Math.round((event.detail.loaded / event.detail.total) * 100);
      }
    });

    // htmx leaves error answers unswapped; this form answers refusals (413, 422, 502…)
    // with itself and the reason, and other errors with a readable fragment.
    document.addEventListener("htmx:beforeSwap", (event) => {
      if (!voiceForm(event)) return;
      const status = event.detail.xhr.status;
      if (status >= 400 && event.detail.xhr.responseText) {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
    });

    document.addEventListener("htmx:sendError", (event) => {
      const form = voiceForm(event);
      if (!form) return;
      const progress = form.querySelector("[data-upload-progress]");
      if (progress) progress.hidden = true;
      let notice = form.querySelector("[data-send-error]");
      if (!notice) {
        notice = document.createElement("p");
        notice.className = "form-error";
        notice.setAttribute("role", "alert");
        notice.dataset.sendError = "1";
        form.prepend(notice);
      }
      notice.textContent = "The upload didn't reach the server (the connection dropped). Check your connection and save again.";
    });

    enhance(document);
    document.addEventListener("htmx:load", (event) => enhance(event.target));
  })();
}
