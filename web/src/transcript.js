// The live transcript of both sides, from livekit-agents' "lk.transcription" text streams.
//
// The agent sends its own words as one stream per segment, chunk by chunk, in
// step with its audio; the user's words come as a new stream per update, each
// holding the whole segment so far, the last one marked final. Keeping, per
// segment, the text of its latest stream handles both.

export const TRANSCRIPTION_TOPIC = 'lk.transcription';
const SEGMENT_ID = 'lk.segment_id';
const FINAL = 'lk.transcription_final';

export class Transcript {
  /** @param {HTMLOListElement} list  @param {(who: 'user'|'agent', final: boolean) => void} onUpdate */
  constructor(list, onUpdate) {
    this.list = list;
    this.onUpdate = onUpdate;
    this.items = new Map();
  }

  clear() {
    this.list.replaceChildren();
    this.items.clear();
  }

  /** Follow one text stream to its end. */
  async follow(reader, who, speaker) {
    const segment = reader.info.attributes?.[SEGMENT_ID] ?? reader.info.id;
    const item = this.itemFor(segment, who, speaker);
    const body = item.querySelector('.text');
    let text = '';
    this.onUpdate(who, false);
    for await (const chunk of reader) {
      text += chunk;
      body.textContent = text;
      this.scroll();
    }
    // Agent segments carry the final flag on their closing trailer; their end is their final.
    const final = who === 'agent' || reader.info.attributes?.[FINAL] === 'true';
    item.classList.toggle('interim', !final);
    if (final) this.onUpdate(who, true);
  }

  itemFor(segment, who, speaker) {
    let item = this.items.get(segment);
    if (!item) {
      item = document.createElement('li');
      item.className = `${who} interim`;
      item.dataset.who = who;
      const name = document.createElement('span');
      name.className = 'speaker';
      name.textContent = speaker;
      const text = document.createElement('span');
      text.className = 'text';
      item.append(name, text);
      this.list.append(item);
      this.items.set(segment, item);
    }
    return item;
  }

  scroll() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}
