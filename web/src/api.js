// The two calls to `facetalk web`. Failures become messages a person can act on.

/** An error whose message is meant for the page, as it is. */
export class ReadableError extends Error {}

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

/** A join token for a fresh room with the chosen persona: {url, token, room, identity}. */
export function fetchToken(persona) {
  return request('/api/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ persona }),
  });
}
