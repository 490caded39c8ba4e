// The chat page: keeps the conversation, sends it to /v1/chat/completions with stream: true and
// shows the answer as its server-sent events arrive. The API is stateless, so every request
// carries the whole conversation, past clips included.

import { Recorder, toWav } from "./audio.js";

const $ = (id) => document.getElementById(id);
const state = { model: null, history: [], clip: null, busy: false, recorder: null, maxAudioSeconds: Infinity,
  answering: null };

async function init() {
  const health = await fetch("/health").then((r) => r.json());
  state.model = health.model;
  $("model").textContent = health.model;
  $("key-field").hidden = !health.auth_required;
  $("max-tokens").max = health.max_tokens;
  $("max-tokens").value = Math.min(Number($("max-tokens").value), health.max_tokens);
  state.maxAudioSeconds = health.max_audio_seconds ?? Infinity;
  $("api-key").value = localStorage.getItem("lalm-api-key") || "";
  $("api-key").addEventListener("change", () => localStorage.setItem("lalm-api-key", $("api-key").value));
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); send(); }
  });
  $("record").addEventListener("click", toggleRecording);
  $("file").addEventListener("change", () => { const file = $("file").files[0]; if (file) attach(file, file.name); });
  $("remove-attachment").addEventListener("click", () => setClip(null));
  $("new-chat").addEventListener("click", () => {
    // Nothing of the old chat may reach the new one: not an unsent clip, nor an answer still coming.
    state.answering?.abort();
    state.history = [];
    setClip(null);
    $("messages").replaceChildren($("empty"));
    $("empty").hidden = false;
  });
  document.body.dataset.ready = "true";
}

async function toggleRecording() {
  const button = $("record");
  try {
    if (!state.recorder) {
      state.recorder = new Recorder();
      await state.recorder.start();
      button.classList.add("recording");
      button.textContent = "■ Stop";
    } else {
      const recorder = state.recorder;
      state.recorder = null;
      button.classList.remove("recording");
      button.textContent = "● Record";
      await attach(await recorder.stop(), "recording");
    }
  } catch (err) {
    state.recorder = null;
    setStatus(`microphone: ${err.message}`);
  }
}

async function attach(blob, label) {
  try {
    const clip = await toWav(blob);
    if (clip.seconds > state.maxAudioSeconds) {
      // The server would refuse it after the whole upload: say so now.
      setStatus(`${label} is ${clip.seconds.toFixed(1)} s, over the server's limit of ${state.maxAudioSeconds} s per clip`);
    } else {
      setClip({ ...clip, label, url: URL.createObjectURL(clip.wav) });
    }
  } catch (err) {
    setStatus(`could not read that audio (${err.message || err})`);
  }
  $("file").value = "";
}

function setClip(clip) {
  state.clip = clip;
  $("attachment").hidden = !clip;
  $("attachment-audio").src = clip ? clip.url : "";
  $("attachment-label").textContent = clip ? `${clip.label} · ${clip.seconds.toFixed(1)} s` : "";
}

async function send() {
  const text = $("prompt").value.trim();
  if (state.busy || (!text && !state.clip)) return;
  const clip = state.clip;
  const parts = [];
  if (clip) parts.push({ type: "input_audio", input_audio: { data: clip.base64, format: "wav" } });
  if (text) parts.push({ type: "text", text });
  const message = { role: "user", content: parts };
  addMessage("user", text, clip);
  const bubble = addMessage("assistant", "");
  $("prompt").value = "";
  setClip(null);
  setBusy(true);
  const answering = new AbortController();
  state.answering = answering;
  try {
    const answer = await streamAnswer([...state.history, message], bubble, answering.signal);
    state.history.push(message, { role: "assistant", content: answer });
    bubble.dataset.state = "done";
  } catch (err) {
    bubble.querySelector(".text").textContent = answering.signal.aborted ? "(stopped)" : err.message;
    bubble.dataset.state = answering.signal.aborted ? "stopped" : "error";
  } finally {
    if (state.answering === answering) state.answering = null;
    setBusy(false);
  }
}

async function streamAnswer(messages, bubble, signal) {
  const started = performance.now();
  const headers = { "Content-Type": "application/json" };
  if ($("api-key").value) headers.Authorization = `Bearer ${$("api-key").value}`;
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers,
    signal,  // aborting closes the connection, and the server stops generating
    body: JSON.stringify({
      model: state.model, messages, stream: true, stream_options: { include_usage: true },
      max_tokens: Number($("max-tokens").value), temperature: Number($("temperature").value),
    }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.error?.message || `HTTP ${response.status}`);
  }
  const textNode = bubble.querySelector(".text");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", text = "", finish = null, usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const events = buffer.split("\n\n");
    buffer = events.pop();  // an incomplete event waits for the next read
    for (const event of events) {
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      usage = chunk.usage || usage;
      const choice = chunk.choices[0];
      if (choice?.delta?.content) {
        text += choice.delta.content;
        textNode.textContent = text;
        scrollDown();
      }
      finish = choice?.finish_reason || finish;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const tokens = usage ? `${usage.completion_tokens} tokens · ` : "";
  bubble.querySelector(".meta").textContent =
    `${tokens}${seconds.toFixed(1)} s${finish === "length" ? " · cut at max tokens" : ""}`;
  return text;
}

function addMessage(role, text, clip = null) {
  $("empty").hidden = true;
  const bubble = document.createElement("div");
  bubble.className = `msg ${role}`;
  if (role === "assistant") bubble.dataset.state = "streaming";
  if (clip) {
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.src = clip.url;
    audio.title = `${clip.label} · ${clip.seconds.toFixed(1)} s`;
    bubble.append(audio);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  const meta = document.createElement("span");
  meta.className = "meta";
  if (clip && role === "user") meta.textContent = `${clip.label} · ${clip.seconds.toFixed(1)} s`;
  bubble.append(body, meta);
  $("messages").append(bubble);
  scrollDown();
  return bubble;
}

function setBusy(busy) {
  state.busy = busy;
  $("send").disabled = busy;
  setStatus(busy ? "answering…" : "");
}

function setStatus(text) { $("status").textContent = text; }
function scrollDown() { $("messages").scrollTop = $("messages").scrollHeight; }

init().catch((err) => setStatus(`cannot reach the server: ${err.message}`));
