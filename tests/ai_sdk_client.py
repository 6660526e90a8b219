"""The AI SDK's own client (npm `ai`, tests/node) driven from Node: send, stop mid-reply, resume.

Every chunk the transport hands on, and every `data:` line on the wire, is checked against the
package's `uiMessageChunkSchema`; the final message is what `readUIMessageStream` builds.
"""

from __future__ import annotations

from typing import Any

from tests.node_clients import run_node

SCRIPT = r"""
import { DefaultChatTransport, readUIMessageStream, uiMessageChunkSchema } from "ai";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (part) => { text += part; });
  process.stdin.on("end", () => resolve(text));
}));

async function valid(chunk) {
  const check = await uiMessageChunkSchema().validate(chunk);
  if (!check.success) throw new Error("not a UI message chunk: " + JSON.stringify(chunk));
}

const wire = [];  // every response, as the server sent it
async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  const entry = { method: init?.method ?? "GET", status: response.status, text: "",
    protocol: response.headers.get("x-vercel-ai-ui-message-stream"),
    contentType: response.headers.get("content-type") };
  wire.push(entry);
  if (!response.body) return response;
  const [mine, recorded] = response.body.tee();
  entry.reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const bytes of recorded) entry.text += decoder.decode(bytes, { stream: true });
    } catch { entry.cut = true; }
  })();
  return new Response(mine, { status: response.status, headers: response.headers });
}

function transport(url) {
  return new DefaultChatTransport({ api: url + "/api/chat", headers: input.headers ?? {},
    fetch: recordingFetch });
}

// Read a chunk stream to its end (or abort after `stopAfter` text deltas, or `stopAfterChunks`
// chunks of any kind): its chunks and the UIMessage readUIMessageStream builds from it.
async function consume(stream, stopAfter = 0, controller = null, stopAfterChunks = 0) {
  const [forMessage, forChunks] = stream.tee();
  let message = null;
  const building = (async () => {
    for await (const snapshot of readUIMessageStream({ stream: forMessage })) message = snapshot;
  })().catch(() => {});
  const chunks = [];
  try {
    for await (const chunk of forChunks) {
      await valid(chunk);
      chunks.push(chunk);
      const deltas = chunks.filter((c) => c.type === "text-delta").length;
      if ((stopAfter && deltas >= stopAfter) || (stopAfterChunks && chunks.length >= stopAfterChunks)) {
        controller.abort();
        break;
      }
    }
  } catch (error) {
    if (!controller?.signal.aborted) throw error;
  }
  await building;
  return { chunks, message };
}

const first = transport(input.url);
const controller = new AbortController();
const sent = await first.sendMessages({ trigger: "submit-message", chatId: input.chatId,
  messageId: undefined, messages: input.messages, abortSignal: controller.signal });
const result = { sent: await consume(sent, input.stopAfter ?? 0, controller, input.stopAfterChunks ?? 0) };
if (input.stopAfter || input.stopAfterChunks) {
  const again = await transport(input.resumeUrl ?? input.url).reconnectToStream({ chatId: input.chatId });
  result.resumed = again === null ? null : await consume(again);
}
const after = await transport(input.resumeUrl ?? input.url).reconnectToStream({ chatId: input.chatId });
result.afterEnd = after === null ? null : "a stream";
for (const entry of wire) {
  await entry.reading;
  delete entry.reading;
  const data = entry.text.split(/\r?\n/).filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).trim());
  entry.ended = data.at(-1) === "[DONE]";
  for (const payload of data.filter((item) => item !== "[DONE]")) await valid(JSON.parse(payload));
  entry.chunks = data.length;
  delete entry.text;
}
result.wire = wire;
console.log(JSON.stringify(result));
"""


def user_message(text: str, message_id: str = "u1") -> dict[str, Any]:
    """A UI message of the user's, as useChat sends it."""
    return {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]}


def chat(
    url: str,
    chat_id: str,
    messages: list[dict[str, Any]],
    *,
    stop_after: int = 0,
    stop_after_chunks: int = 0,
    resume_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send `messages` with DefaultChatTransport and read the reply with readUIMessageStream; with
    `stop_after` (`stop_after_chunks`), abort after that many text deltas (chunks) and resume with
    reconnectToStream (on `resume_url` when given); then reconnect once more (null: none active)."""
    payload: dict[str, Any] = {"url": url, "chatId": chat_id, "messages": messages}
    if stop_after:
        payload["stopAfter"] = stop_after
    if stop_after_chunks:
        payload["stopAfterChunks"] = stop_after_chunks
    if resume_url:
        payload["resumeUrl"] = resume_url
    if headers:
        payload["headers"] = headers
    result: dict[str, Any] = run_node(SCRIPT, payload)
    return result
