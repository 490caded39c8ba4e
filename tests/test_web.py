"""The web page in headless Chromium: a typed message, an uploaded file and a microphone recording,
each answered by streaming; then a screenshot.

Chromium is driven with the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON
messages separated by NUL bytes on file descriptors 3 and 4), which needs no websocket library,
and `--use-fake-device-for-media-stream` gives it a microphone that beeps. Skipped without chromium.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import threading
import time
import urllib.request

import numpy as np
import pytest
import soundfile as sf
from conftest import hold_until_cancelled

from lalm import LALM
from lalm.serve import App, Server
from lalm.serve_api import Limits
from lalm.serve_batch import BatchWorker, HFBackend

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
WIDTH, HEIGHT = 900, 760


class DevTools:
    """A headless Chromium and one page of it, driven over the DevTools pipe."""

    def __init__(self, profile, log):
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--remote-debugging-pipe", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--autoplay-policy=no-user-gesture-required", f"--window-size={WIDTH},{HEIGHT}"]
        # The shell hands our pipes to Chromium as its fds 3 (commands in) and 4 (replies out).
        self.proc = subprocess.Popen(["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null', CHROMIUM, *flags],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, bufsize=0)
        self.buffer, self.last_id, self.session = b"", 0, None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.proc.stdin.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self.buffer:
                ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise TimeoutError(f"{method}: no reply from chromium in {timeout} s")
                data = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not data:
                    raise RuntimeError(f"{method}: chromium exited")
                self.buffer += data
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.last_id:  # anything else is an event
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def js(self, expression: str):
        reply = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while not (value := self.js(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} still false after {timeout} s; page: {self.js('document.body.innerText')}")
            time.sleep(0.1)
        return value

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(tiny_config):
    model = LALM(tiny_config.model)
    calls: list[list[list[int]]] = []  # per generate_batch call: per row, the clip lengths at 16 kHz
    generate_batch = model.generate_batch

    def spy(conversations, audio, **kwargs):
        calls.append([[len(clip) for clip in row] for row in audio])
        return generate_batch(conversations, audio, **kwargs)

    model.generate_batch = spy
    server = Server(("127.0.0.1", 0), App(BatchWorker(HFBackend(model)).start(), "tiny-random")).start()
    server.calls = calls
    yield server
    server.stop()


@pytest.fixture
def browser(tmp_path):
    with open(tmp_path / "chromium.log", "wb") as log:
        devtools = DevTools(tmp_path / "profile", log)
        yield devtools
        devtools.close()


LAST_ANSWER = "[...document.querySelectorAll('.msg.assistant')].at(-1)"


def send(browser: DevTools, text: str) -> str:
    """Type `text`, send it, wait for the streamed answer to finish; returns the answer's text."""
    browser.js(f"document.getElementById('prompt').value = {json.dumps(text)}; document.getElementById('send').click()")
    browser.wait_for(f"{LAST_ANSWER}?.dataset.state === 'done'")
    return browser.js(f"{LAST_ANSWER}.querySelector('.text').textContent")


def test_page_streams_answers_to_text_file_and_microphone(server, browser, tmp_path):
    browser.call("Page.navigate", url=server.url + "/")
    browser.wait_for("document.body?.dataset.ready === 'true'")
    assert browser.js("document.getElementById('model').textContent") == "tiny-random"
    browser.js("document.getElementById('max-tokens').value = 12")

    # 1. typed text: the streamed answer equals the server's plain (greedy) answer
    answer = send(browser, "Hello, who are you?")
    expected = plain_answer(server, [{"role": "user", "content": [{"type": "text", "text": "Hello, who are you?"}]}])
    assert answer == expected and answer

    # 2. an uploaded 44.1 kHz stereo file: decoded, downmixed and resampled to 16 kHz WAV in the page
    path = tmp_path / "upload.wav"
    t = np.arange(int(1.2 * 44100)) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([tone, tone], axis=1).astype(np.float32), 44100)
    file_input = browser.call("Runtime.evaluate", expression="document.getElementById('file')")["result"]["objectId"]
    browser.call("DOM.setFileInputFiles", files=[str(path)], objectId=file_input)
    browser.wait_for("!document.getElementById('attachment').hidden")
    send(browser, "What is in this clip?")
    (row,) = server.calls[-1]
    assert len(row) == 1 and abs(row[0] - 1.2 * 16000) < 100

    # 3. the (fake) microphone: record about a second, stop, send the clip alone
    browser.js("document.getElementById('record').click()")
    browser.wait_for("document.getElementById('record').classList.contains('recording')")
    time.sleep(1.2)
    browser.js("document.getElementById('record').click()")
    browser.wait_for("!document.getElementById('attachment').hidden")
    browser.js("document.getElementById('send').click()")
    browser.wait_for(f"{LAST_ANSWER}?.dataset.state === 'done' && "
                     "document.querySelectorAll('.msg.assistant').length === 3")
    (row,) = server.calls[-1]
    assert len(row) == 2 and row[0] == server.calls[-2][0][0]  # the history resends the uploaded clip
    assert 0.5 * 16000 < row[1] < 3 * 16000

    # the DOM: three exchanges, every answer finished and labelled with its token count
    states = browser.js("[...document.querySelectorAll('.msg.assistant')].map(m => m.dataset.state)")
    assert states == ["done"] * 3
    meta = browser.js(f"{LAST_ANSWER}.querySelector('.meta').textContent")
    assert re.fullmatch(r"\d+ tokens · [\d.]+ s( · cut at max tokens)?", meta), meta
    assert browser.js("document.querySelectorAll('.msg.user audio').length") == 2

    png = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "page.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == WIDTH and int.from_bytes(png[20:24], "big") == HEIGHT
    assert len(png) > 20_000  # a rendered page, not a blank one


def plain_answer(server, messages: list[dict]) -> str:
    body = json.dumps({"messages": messages, "max_tokens": 12, "temperature": 0}).encode()
    request = urllib.request.Request(server.url + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["choices"][0]["message"]["content"]


def write_tone(path, seconds: float, rate: int = 16000):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


def test_new_chat_leaves_nothing_of_the_old_one(tiny_config, browser, tmp_path):
    """New chat drops an attached, unsent clip and an answer still streaming (whose row then stops);
    a clip over the server's per-clip limit is refused when attached, not after its upload."""
    model = LALM(tiny_config.model)
    calls, hold, started, finished, seen = [], threading.Event(), threading.Event(), threading.Event(), {}
    generate_batch = model.generate_batch

    def spy(conversations, audio, streamer, **kwargs):
        calls.append(([[len(clip) for clip in row] for row in audio], len(conversations[0])))
        if hold.is_set():
            hold_until_cancelled(streamer, started, seen)
        try:
            return generate_batch(conversations, audio, streamer=streamer, **kwargs)
        finally:
            finished.set()

    model.generate_batch = spy
    app = App(BatchWorker(HFBackend(model)).start(), "tiny-random", Limits(max_audio_seconds=2.0))
    server = Server(("127.0.0.1", 0), app).start()
    try:
        browser.call("Page.navigate", url=server.url + "/")
        browser.wait_for("document.body?.dataset.ready === 'true'")
        browser.js("document.getElementById('max-tokens').value = 12")
        file_input = browser.call("Runtime.evaluate", expression="document.getElementById('file')")["result"]["objectId"]

        browser.call("DOM.setFileInputFiles", files=[str(write_tone(tmp_path / "long.wav", 3.0))], objectId=file_input)
        status = browser.wait_for("document.getElementById('status').textContent.includes('limit') && "
                                  "document.getElementById('status').textContent")
        assert "over the server's limit of 2 s" in status
        assert browser.js("document.getElementById('attachment').hidden")

        browser.call("DOM.setFileInputFiles", files=[str(write_tone(tmp_path / "ok.wav", 1.0))], objectId=file_input)
        browser.wait_for("!document.getElementById('attachment').hidden")
        browser.js("document.getElementById('new-chat').click()")
        assert browser.js("document.getElementById('attachment').hidden")
        send(browser, "Hello.")
        assert calls[-1] == ([[]], 1)  # the clip attached before New chat was not sent

        hold.set()
        browser.js("document.getElementById('prompt').value = 'A long answer, please.'; "
                   "document.getElementById('send').click()")
        assert started.wait(60)
        finished.clear()
        browser.js("document.getElementById('new-chat').click()")
        assert finished.wait(60) and seen["cancelled"]  # the page's fetch was aborted and the row stopped
        hold.clear()
        assert browser.js("document.querySelectorAll('.msg').length") == 0
        send(browser, "Again.")
        assert calls[-1] == ([[]], 1)  # the new chat's first request carries no earlier turn
    finally:
        server.stop()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.environ.get("LALM_DEMO_CHECKPOINT") or os.path.join(ROOT, "runs", "demo", "align", "final")
# The demo's held-out spoken questions sit beside its checkpoint: runs/demo/speech/eval/wavs.
DEMO_CLIPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(DEMO))), "speech", "eval", "wavs")


@pytest.mark.skipif(not os.path.isfile(os.path.join(DEMO, "trained.safetensors")) or not os.path.isdir(DEMO_CLIPS),
                    reason=f"no trained demo checkpoint with its clips at {DEMO} (run python -m demo, or set "
                           "LALM_DEMO_CHECKPOINT to a runs/<name>/align/final)")
def test_page_answers_a_spoken_question_with_the_trained_demo_model(browser, tmp_path):
    """The checkpoint `python -m demo` trains (recognizer + its branches, real SmolLM2 and Whisper),
    served as `python -m lalm.serve` serves it: an uploaded spoken question is heard (the recognizer's
    transcript) and answered by streaming, the same answer the model gives that clip without the page."""
    model = LALM.from_pretrained(DEMO)
    received = []
    generate_batch = model.generate_batch

    def spy(conversations, audio, **kwargs):
        received.append((conversations, audio))
        return generate_batch(conversations, audio, **kwargs)

    model.generate_batch = spy
    server = Server(("127.0.0.1", 0), App(BatchWorker(HFBackend(model)).start(), "demo")).start()
    try:
        browser.call("Page.navigate", url=server.url + "/")
        browser.wait_for("document.body?.dataset.ready === 'true'")
        browser.js("document.getElementById('max-tokens').value = 24")
        question = os.path.join(DEMO_CLIPS, min(os.listdir(DEMO_CLIPS)))
        file_input = browser.call("Runtime.evaluate", expression="document.getElementById('file')")["result"]["objectId"]
        browser.call("DOM.setFileInputFiles", files=[question], objectId=file_input)
        browser.wait_for("!document.getElementById('attachment').hidden")
        browser.js("document.getElementById('send').click()")
        browser.wait_for(f"{LAST_ANSWER}?.dataset.state === 'done'", timeout=180)
        answer = browser.js(f"{LAST_ANSWER}.querySelector('.text').textContent")
    finally:
        server.stop()
    (conversations, audio), = received
    (clip,) = audio[0]
    info = sf.info(question)
    assert abs(clip.samples - info.frames * 16000 / info.samplerate) < 200 and clip.transcript.strip()
    assert answer.strip() and answer == generate_batch(conversations, audio, max_new_tokens=24)[0]
