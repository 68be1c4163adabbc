// The FaceTalk page: pick a persona, join a fresh room, talk to the avatar.
import {
  ConnectionError,
  ConnectionErrorReason,
  ConnectionState,
  Room,
  RoomEvent,
  Track,
} from 'livekit-client';

import { BusyError, fetchPersonas, fetchToken, ReadableError } from './api.js';
import { LatencyReadout } from './latency.js';
// The wire names shared with the worker (one source: dialogue/protocol.json, inlined by esbuild).
import { metrics_topic as METRICS_TOPIC } from '../../dialogue/protocol.json';
import { Transcript, TRANSCRIPTION_TOPIC } from './transcript.js';

const AGENT_STATE = 'lk.agent.state';
const STATE_LABELS = {
  initializing: 'getting ready…',
  idle: 'idle',
  listening: 'listening',
  thinking: 'thinking…',
  speaking: 'speaking',
};

// Waiting for a free avatar is bounded: this many tries, `retry_after_s` apart.
const MAX_WAIT_TRIES = 40;
// The avatar sends frames all the time, listening or speaking: once playing, this
// long without a new frame means its worker is gone (LiveKit itself notices only
// after about 20 s), and the call ends with a message rather than in silence.
const STALL_S = 4;
const AGENT_GONE =
  'The avatar stopped responding (its worker went away). Join again to talk to a new one.';
// livekit-client re-joins by itself after a network drop or a server restart (about 10 tries
// over some 15 s); only when it gives up is the call over.
const CONNECTION_LOST =
  'The connection to the server was lost and could not be restored. Join again to continue.';

const $ = (id) => document.getElementById(id);

function findElements() {
  return {
    connection: $('connection'),
    error: $('error'),
    lobby: $('lobby'),
    personas: $('personas'),
    join: $('join'),
    busy: $('busy'),
    busyMessage: $('busy-message'),
    wait: $('wait'),
    call: $('call'),
    video: $('avatar'),
    state: $('state'),
    latency: $('latency'),
    mute: $('mute'),
    leave: $('leave'),
    transcript: $('transcript'),
  };
}

// Messages for what can go wrong while joining; each says what to do about it.

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

/** The page: a lobby to pick a persona, then one call at a time. */
class CallPage {
  constructor(ui) {
    this.ui = ui;
    this.chosen = null; // {id, name, …} of the picked persona
    this.room = null; // the Room of the call on screen, if any
    this.waiting = null; // {stop: boolean} while waiting for a free avatar
    this.busyRoom = null; // the room of the last "busy" answer; its agent may still come
    this.latency = new LatencyReadout(ui.latency);
    this.transcript = new Transcript(ui.transcript, (who, final) => {
      if (who === 'user' && final) this.latency.userFinished();
      if (who === 'agent') this.latency.agentStarted();
    });
  }

  start() {
    this.ui.join.addEventListener('click', () => this.join());
    this.ui.wait.addEventListener('click', () => (this.waiting ? this.stopWaiting() : this.waitForAvatar()));
    this.ui.mute.addEventListener('click', () => this.toggleMute());
    this.ui.leave.addEventListener('click', () => this.leave());
    fetchPersonas().then(
      (listing) => this.renderPersonas(listing),
      (error) => this.showError(error instanceof ReadableError ? error.message : String(error)),
    );
  }

  showError(message) {
    this.ui.error.textContent = message;
    this.ui.error.hidden = !message;
  }

  setConnection(text) {
    this.ui.connection.textContent = text;
  }

  setAgentState(state) {
    this.ui.state.dataset.state = state;
    this.ui.state.textContent = STATE_LABELS[state] ?? state;
    if (state === 'speaking') this.latency.agentStarted();
  }

  // --- lobby -----------------------------------------------------------------

  renderPersonas({ personas, default: defaultId }) {
    this.ui.personas.replaceChildren(
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
        card.addEventListener('click', () => this.choose(persona));
        return card;
      }),
    );
    const first = personas.find((p) => p.id === defaultId) ?? personas[0];
    if (first) {
      this.choose(first);
    } else {
      this.showError('No personas are configured: add a persona YAML to the folder facetalk web serves.');
    }
  }

  choose(persona) {
    this.chosen = persona;
    for (const card of this.ui.personas.children) {
      card.setAttribute('aria-checked', String(card.dataset.id === persona.id));
    }
    this.ui.join.disabled = false;
    this.ui.join.textContent = `Talk to ${persona.name}`;
  }

  // --- the call --------------------------------------------------------------

  watchRoom(joined) {
    const { ui } = this;
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
      if (participant.isAgent && AGENT_STATE in changed) this.setAgentState(changed[AGENT_STATE]);
    });
    joined.on(RoomEvent.ParticipantDisconnected, (participant) => {
      // A full re-join (the server restarted) first drops every participant, then says
      // Reconnecting, in the same step: look once it is done. The agent re-joins too.
      setTimeout(() => {
        if (participant.isAgent && joined === this.room && joined.state === ConnectionState.Connected) {
          this.agentGone(joined);
        }
      }, 0);
    });
    let reconnecting = false;
    joined.on(RoomEvent.Reconnecting, () => {
      reconnecting = true;
      if (joined === this.room) this.setConnection('connection lost, reconnecting…');
    });
    joined.on(RoomEvent.Reconnected, () => {
      reconnecting = false;
      if (joined === this.room) this.setConnection(`in room ${joined.name}`);
    });
    joined.on(RoomEvent.Disconnected, () => {
      // Only a call still on screen ends here; leave() and failJoin() have moved on already.
      if (joined !== this.room) return;
      this.endCall('The call ended.');
      if (reconnecting) this.showError(CONNECTION_LOST);
    });
    joined.on(RoomEvent.DataReceived, (payload, participant, _kind, topic) => {
      if (topic === METRICS_TOPIC && participant?.isAgent) {
        this.latency.agentMetrics(JSON.parse(new TextDecoder().decode(payload)));
      }
    });
    joined.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader, sender) => {
      const mine = sender.identity === joined.localParticipant.identity;
      this.transcript.follow(reader, mine ? 'user' : 'agent', mine ? 'You' : this.chosen.name);
    });
  }

  async join() {
    this.showError('');
    this.showBusy('');
    this.ui.join.disabled = true;
    this.setConnection('getting a token…');
    let grant;
    try {
      grant = await fetchToken(this.chosen.id);
    } catch (error) {
      if (error instanceof BusyError) return this.offerToWait(error);
      return this.failJoin(error instanceof ReadableError ? error.message : String(error));
    }
    await this.connect(grant);
  }

  // --- all avatars busy --------------------------------------------------------

  showBusy(message) {
    this.ui.busyMessage.textContent = message;
    this.ui.busy.hidden = !message;
  }

  offerToWait(busy) {
    this.busyRoom = busy.room;
    this.showBusy(`${busy.message} You can wait for one to free up.`);
    this.ui.wait.textContent = 'Wait for a free avatar';
    this.setConnection('not connected');
    this.ui.join.disabled = false;
  }

  /** Ask for a token every `retry_after_s` until an avatar is free, the user stops, or the tries run out. */
  async waitForAvatar() {
    const waiting = { stop: false };
    this.waiting = waiting;
    this.ui.join.disabled = true;
    this.ui.wait.textContent = 'Stop waiting';
    let grant = null;
    for (let attempt = 1; attempt <= MAX_WAIT_TRIES && !waiting.stop && !grant; attempt += 1) {
      this.showBusy(`All avatars are busy. Waiting for one to free up… (try ${attempt} of ${MAX_WAIT_TRIES})`);
      try {
        grant = await fetchToken(this.chosen.id, this.busyRoom);
      } catch (error) {
        if (error instanceof BusyError) this.busyRoom = error.room;
        if (!(error instanceof BusyError)) {
          this.waiting = null;
          this.showBusy('');
          return this.failJoin(error instanceof ReadableError ? error.message : String(error));
        }
        await new Promise((resolve) => setTimeout(resolve, error.retryAfterS * 1000));
      }
    }
    this.waiting = null;
    if (grant && !waiting.stop) {
      this.showBusy('');
      return this.connect(grant);
    }
    this.ui.join.disabled = false;
    this.ui.wait.textContent = 'Wait for a free avatar';
    this.showBusy(waiting.stop ? '' : 'No avatar became free while you waited. Please try again later.');
  }

  stopWaiting() {
    if (this.waiting) this.waiting.stop = true;
  }

  // --- joining the room --------------------------------------------------------

  async connect(grant) {
    this.room = new Room();
    this.watchRoom(this.room);
    this.setConnection(`connecting to ${grant.url}…`);
    try {
      await this.room.connect(grant.url, grant.token);
    } catch (error) {
      return this.failJoin(describeConnectionError(error, grant.url));
    }
    try {
      await this.room.localParticipant.setMicrophoneEnabled(true);
    } catch (error) {
      return this.failJoin(describeMicrophoneError(error));
    }
    this.enterCall(grant.room);
  }

  async failJoin(message) {
    const failed = this.room;
    this.room = null;
    await failed?.disconnect();
    this.showError(message);
    this.setConnection('not connected');
    this.ui.join.disabled = false;
  }

  /** Ends the call when the avatar's video has stopped for STALL_S (checked every second). */
  watchVideo(joined) {
    let frames = 0;
    let changed = Date.now();
    const check = setInterval(() => {
      if (joined !== this.room) return clearInterval(check);
      if (document.hidden || joined.state !== ConnectionState.Connected) {
        changed = Date.now(); // a hidden tab may not decode video, a reconnecting room gets none: no verdict
        return;
      }
      const now = this.ui.video.getVideoPlaybackQuality().totalVideoFrames;
      if (now !== frames) {
        frames = now;
        changed = Date.now();
      } else if (frames > 0 && Date.now() - changed > STALL_S * 1000) {
        clearInterval(check);
        this.agentGone(joined);
      }
    }, 1000);
  }

  async agentGone(joined) {
    this.endCall('The avatar left the call.');
    this.showError(AGENT_GONE);
    await joined.disconnect();
  }

  enterCall(roomName) {
    this.watchVideo(this.room);
    this.transcript.clear();
    this.latency.reset();
    this.setAgentState('waiting');
    this.ui.state.textContent = `waiting for ${this.chosen.name}…`;
    this.setMute(false);
    this.setConnection(`in room ${roomName}`);
    this.ui.lobby.hidden = true;
    this.ui.call.hidden = false;
  }

  endCall(message) {
    this.room = null;
    this.ui.video.srcObject = null;
    this.ui.call.hidden = true;
    this.ui.lobby.hidden = false;
    this.ui.join.disabled = false;
    this.setConnection(message ?? 'not connected');
  }

  setMute(muted) {
    this.ui.mute.setAttribute('aria-pressed', String(muted));
    this.ui.mute.textContent = muted ? 'Unmute' : 'Mute';
  }

  async toggleMute() {
    const muted = this.room.localParticipant.isMicrophoneEnabled;
    await this.room.localParticipant.setMicrophoneEnabled(!muted);
    this.setMute(muted);
  }

  async leave() {
    const leaving = this.room;
    this.endCall('You left the call.');
    await leaving?.disconnect();
  }
}

new CallPage(findElements()).start();
