// The FaceTalk page: pick a persona, join a fresh room, talk to the avatar.
import {
  ConnectionError,
  ConnectionErrorReason,
  Room,
  RoomEvent,
  Track,
} from 'livekit-client';

import { fetchPersonas, fetchToken, ReadableError } from './api.js';
import { LatencyReadout, METRICS_TOPIC } from './latency.js';
import { Transcript, TRANSCRIPTION_TOPIC } from './transcript.js';

const AGENT_STATE = 'lk.agent.state';
const STATE_LABELS = {
  initializing: 'getting ready…',
  idle: 'idle',
  listening: 'listening',
  thinking: 'thinking…',
  speaking: 'speaking',
};

const $ = (id) => document.getElementById(id);
const ui = {
  connection: $('connection'),
  error: $('error'),
  lobby: $('lobby'),
  personas: $('personas'),
  join: $('join'),
  call: $('call'),
  video: $('avatar'),
  state: $('state'),
  latency: $('latency'),
  mute: $('mute'),
  leave: $('leave'),
};

let chosen = null; // {id, name}
let room = null;
const latency = new LatencyReadout(ui.latency);
const transcript = new Transcript($('transcript'), (who, final) => {
  if (who === 'user' && final) latency.userFinished();
  if (who === 'agent') latency.agentStarted();
});

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function setConnection(text) {
  ui.connection.textContent = text;
}

function setAgentState(state) {
  ui.state.dataset.state = state;
  ui.state.textContent = STATE_LABELS[state] ?? state;
  if (state === 'speaking') latency.agentStarted();
}

// --- lobby -------------------------------------------------------------------

function renderPersonas({ personas, default: defaultId }) {
  ui.personas.replaceChildren(
    ...personas.map((persona) => {
      const card = document.createElement('button');
      card.className = 'persona';
      card.setAttribute('role', 'radio');
      card.dataset.id = persona.id;
      card.title = persona.greeting;
      const img = document.createElement('img');
      img.src = persona.portrait_url;
      img.alt = '';
      const name = document.createElement('span');
      name.textContent = persona.name;
      card.append(img, name);
      card.addEventListener('click', () => choose(persona));
      return card;
    }),
  );
  const first = personas.find((p) => p.id === defaultId) ?? personas[0];
  if (first) {
    choose(first);
  } else {
    showError('No personas are configured: add a persona YAML to the folder facetalk web serves.');
  }
}

function choose(persona) {
  chosen = persona;
  for (const card of ui.personas.children) {
    card.setAttribute('aria-checked', String(card.dataset.id === persona.id));
  }
  ui.join.disabled = false;
  ui.join.textContent = `Talk to ${persona.name}`;
}

// --- the call ----------------------------------------------------------------

function describeConnectionError(error, url) {
  if (error instanceof ConnectionError) {
    if (error.reason === ConnectionErrorReason.NotAllowed) {
      return `The LiveKit server refused the token (${error.message}). Check that 'facetalk web' and the server use the same API key and secret.`;
    }
    if (error.reason !== ConnectionErrorReason.Cancelled) {
      return `Cannot reach the LiveKit server at ${url}. Is it running? (${error.message})`;
    }
  }
  return `Could not join the room: ${error.message ?? error}`;
}

function describeMicrophoneError(error) {
  if (error.name === 'NotAllowedError' || error.name === 'SecurityError') {
    return 'Microphone access was denied. Allow the microphone for this page in the browser and join again.';
  }
  if (error.name === 'NotFoundError') {
    return 'No microphone was found. Plug one in and join again.';
  }
  return `The microphone could not be opened: ${error.message ?? error}`;
}

function watchRoom(joined) {
  joined.on(RoomEvent.TrackSubscribed, (track) => {
    if (track.kind === Track.Kind.Video) {
      track.attach(ui.video);
    } else if (track.kind === Track.Kind.Audio) {
      document.body.append(track.attach());
    }
  });
  joined.on(RoomEvent.TrackUnsubscribed, (track) => {
    for (const element of track.detach()) {
      if (element !== ui.video) element.remove();
    }
  });
  joined.on(RoomEvent.ParticipantAttributesChanged, (changed, participant) => {
    if (participant.isAgent && AGENT_STATE in changed) setAgentState(changed[AGENT_STATE]);
  });
  joined.on(RoomEvent.ParticipantDisconnected, (participant) => {
    if (participant.isAgent) setAgentState('left');
  });
  joined.on(RoomEvent.Disconnected, () => {
    // Only a call still on screen ends here; leave() and failJoin() have moved on already.
    if (joined === room) endCall('The call ended.');
  });
  joined.on(RoomEvent.DataReceived, (payload, participant, _kind, topic) => {
    if (topic === METRICS_TOPIC && participant?.isAgent) {
      latency.agentMetrics(JSON.parse(new TextDecoder().decode(payload)));
    }
  });
  joined.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader, sender) => {
    const mine = sender.identity === joined.localParticipant.identity;
    transcript.follow(reader, mine ? 'user' : 'agent', mine ? 'You' : chosen.name);
  });
}

async function join() {
  showError('');
  ui.join.disabled = true;
  setConnection('getting a token…');
  let grant;
  try {
    grant = await fetchToken(chosen.id);
  } catch (error) {
    return failJoin(error instanceof ReadableError ? error.message : String(error));
  }
  room = new Room();
  watchRoom(room);
  setConnection(`connecting to ${grant.url}…`);
  try {
    await room.connect(grant.url, grant.token);
  } catch (error) {
    return failJoin(describeConnectionError(error, grant.url));
  }
  try {
    await room.localParticipant.setMicrophoneEnabled(true);
  } catch (error) {
    return failJoin(describeMicrophoneError(error));
  }
  enterCall(grant.room);
}

async function failJoin(message) {
  const failed = room;
  room = null;
  await failed?.disconnect();
  showError(message);
  setConnection('not connected');
  ui.join.disabled = false;
}

function enterCall(roomName) {
  transcript.clear();
  latency.reset();
  setAgentState('waiting');
  ui.state.textContent = `waiting for ${chosen.name}…`;
  setMute(false);
  setConnection(`in room ${roomName}`);
  ui.lobby.hidden = true;
  ui.call.hidden = false;
}

function endCall(message) {
  room = null;
  ui.video.srcObject = null;
  ui.call.hidden = true;
  ui.lobby.hidden = false;
  ui.join.disabled = false;
  setConnection(message ?? 'not connected');
}

function setMute(muted) {
  ui.mute.setAttribute('aria-pressed', String(muted));
  ui.mute.textContent = muted ? 'Unmute' : 'Mute';
}

async function toggleMute() {
  const muted = room.localParticipant.isMicrophoneEnabled;
  await room.localParticipant.setMicrophoneEnabled(!muted);
  setMute(muted);
}

async function leave() {
  const leaving = room;
  endCall('You left the call.');
  await leaving?.disconnect();
}

// --- start -------------------------------------------------------------------

ui.join.addEventListener('click', join);
ui.mute.addEventListener('click', toggleMute);
ui.leave.addEventListener('click', leave);

fetchPersonas().then(renderPersonas, (error) => {
  showError(error instanceof ReadableError ? error.message : String(error));
});
