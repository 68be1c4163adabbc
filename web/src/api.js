// The two calls to `facetalk web`. Failures become messages a person can act on.

/** An error whose message is meant for the page, as it is. */
export class ReadableError extends Error {}

/** Every avatar is in a conversation; asking again with `room` after `retryAfterS` may succeed. */
export class BusyError extends ReadableError {
  constructor(message, room, retryAfterS) {
    super(message);
    this.room = room;
    this.retryAfterS = retryAfterS;
  }
}

async function request(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    // fetch rejects only when no HTTP answer came back at all.
    throw new ReadableError(
      `Cannot reach the FaceTalk server at ${location.origin}. Is 'facetalk web' still running?`,
    );
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 503 && body.busy) {
    throw new BusyError(body.error, body.room, body.retry_after_s ?? 5);
  }
  if (response.status === 502 && body.error) {
    throw new ReadableError(body.error); // LiveKit, behind the FaceTalk server, failed: said as it is
  }
  if (!response.ok) {
    const reason = body.error ?? `${response.status} ${response.statusText}`;
    throw new ReadableError(`The FaceTalk server refused: ${reason}`);
  }
  return body;
}

/** The personas to choose from: {personas: [{id, name, greeting, portrait_url}], default}. */
export function fetchPersonas() {
  return request('/api/personas');
}

/**
 * A join token for a fresh room with the chosen persona, whose agent is already
 * there: {url, token, room, identity}. Throws BusyError when every avatar is busy;
 * `waitedRoom` is the room of that answer, whose agent may have come since.
 */
export function fetchToken(persona, waitedRoom) {
  return request('/api/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ persona, room: waitedRoom }),
  });
}
