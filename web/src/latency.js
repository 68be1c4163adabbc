// The latency readout: how long the avatar took to answer, and where the time went.
//
// The worker publishes each turn's livekit-agents metrics as JSON on the
// metrics data topic (dialogue/protocol.json): for the user's message the end-of-turn and
// transcription delays, for the agent's reply its end-to-end latency (end of
// the user's speech to the agent's first audio) with LLM and TTS parts. Those
// are shown when they arrive. Until then (or with a worker that publishes
// none) the page times it itself, from the user's final transcript reaching
// the page to the avatar starting to answer, and says so.

const seconds = (value) => `${value.toFixed(2)} s`;

export class LatencyReadout {
  /** @param {HTMLElement} element */
  constructor(element) {
    this.element = element;
    this.reset();
  }

  reset() {
    this.startedAt = null;
    this.fromAgent = false;
    this.userTurn = {};
    this.show('Reply time –', 'appears after the first answer', 'none');
  }

  show(headline, detail, source) {
    const strong = document.createElement('strong');
    strong.textContent = headline;
    const small = document.createElement('span');
    small.textContent = detail;
    this.element.replaceChildren(strong, small);
    this.element.dataset.source = source;
  }

  /** The user's final transcript arrived: start the page's own timer. */
  userFinished() {
    this.startedAt = performance.now();
  }

  /** The avatar started answering: stop the page's timer (shown only without agent metrics). */
  agentStarted() {
    if (this.startedAt === null) return;
    const elapsed = (performance.now() - this.startedAt) / 1000;
    this.startedAt = null;
    if (!this.fromAgent) {
      this.show(`Reply time ${seconds(elapsed)}`, 'your final transcript → avatar answers, timed in this page', 'page');
    }
  }

  /** One message's metrics from the worker: {role, metrics}. */
  agentMetrics({ role, metrics }) {
    if (role === 'user') {
      this.userTurn = metrics;
      return;
    }
    if (role !== 'assistant' || metrics.e2e_latency === undefined) return;
    this.fromAgent = true;
    const parts = [
      ['turn end', this.userTurn.end_of_turn_delay],
      ['LLM', metrics.llm_node_ttft],
      ['TTS', metrics.tts_node_ttfb],
    ].filter(([, value]) => value !== undefined);
    const breakdown = parts.map(([name, value]) => `${name} ${seconds(value)}`);
    this.show(
      `Reply time ${seconds(metrics.e2e_latency)}`,
      ["end of your speech → avatar's voice (agent metrics)", ...breakdown].join(' · '),
      'agent',
    );
  }
}
