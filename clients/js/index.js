// Live counts of a Headcount topic, on top of the official phoenix client.
//
// The gateway pushes `presence_state` {"viewers":{"count":N},"users":{"count":M}} after every
// join (and rejoin), then `presence_diff` {"joins":{...},"leaves":{...}} with every class in
// both halves. watch() folds them as the seed article's reducer does (count + joins - leaves)
// and hands each new counts object to its subscribers. It imports nothing: pass it your
// phoenix Socket, so it uses the phoenix version (and transport) your page already has.

/**
 * @typedef {object} Counts
 * @property {number} viewers  anonymous connections in the topic
 * @property {number} users    distinct logged-in users in the topic
 * @property {number} [connections]  all connections, when joined with {connections: true}
 * @property {boolean} [partial]  true while a node of the cluster is missing from the counts,
 *   when joined with {partial: true}
 * @property {boolean} ready   true once the first presence_state arrived
 * @property {string|null} error  the reason of the last refused join ("observe only",
 *   "unauthorized", ...); the phoenix client keeps retrying it
 */

/** The counts before anything arrived. */
export const INITIAL_COUNTS = Object.freeze({ viewers: 0, users: 0, ready: false, error: null });

const CLASSES = ["viewers", "users", "connections"];

/**
 * applyState returns the counts a presence_state payload sets.
 * @param {Counts} counts
 * @param {object} payload
 * @returns {Counts}
 */
export function applyState(counts, payload) {
  const next = { ready: true, error: null };
  for (const k of CLASSES) {
    if (payload && payload[k] && typeof payload[k].count === "number") next[k] = payload[k].count;
  }
  next.viewers ??= 0;
  next.users ??= 0;
  if (payload && typeof payload.partial === "boolean") next.partial = payload.partial;
  return Object.freeze({ ...counts, ...next });
}

/**
 * applyDiff returns the counts after a presence_diff: count + joins - leaves per class.
 * A diff before the first state is ignored (the state that follows every join is complete).
 * @param {Counts} counts
 * @param {object} payload
 * @returns {Counts}
 */
export function applyDiff(counts, payload) {
  if (!counts.ready || !payload) return counts;
  const next = { ...counts };
  const { joins = {}, leaves = {} } = payload;
  for (const k of CLASSES) {
    if (typeof next[k] !== "number") continue;
    next[k] += ((joins[k] && joins[k].count) || 0) - ((leaves[k] && leaves[k].count) || 0);
  }
  if (typeof payload.partial === "boolean") next.partial = payload.partial;
  return Object.freeze(next);
}

// One channel per topic per socket: a second join of the same topic on one connection
// replaces the first (Phoenix semantics), so watchers of one topic share its channel.
const shared = new WeakMap(); // socket -> Map(topic -> entry)

function entryFor(socket, topic, joinParams) {
  let topics = shared.get(socket);
  if (!topics) shared.set(socket, (topics = new Map()));
  const key = JSON.stringify(joinParams);
  let e = topics.get(topic);
  if (e) {
    if (e.key !== key) {
      throw new Error(`headcount: ${topic} is already watched on this socket with other options (${e.key})`);
    }
    e.refs++;
    return e;
  }
  e = { key, refs: 1, counts: INITIAL_COUNTS, listeners: new Set() };
  const set = (counts) => {
    if (counts === e.counts) return;
    e.counts = counts;
    for (const fn of [...e.listeners]) fn(counts);
  };
  e.channel = socket.channel(topic, joinParams);
  e.channel.on("presence_state", (p) => set(applyState(e.counts, p)));
  e.channel.on("presence_diff", (p) => set(applyDiff(e.counts, p)));
  e.channel.onError(() => {
    // The connection or the channel failed; phoenix rejoins, and the rejoin's presence_state
    // sets the counts again. Until then they are stale: say so.
    if (e.counts.ready) set(Object.freeze({ ...e.counts, ready: false }));
  });
  e.channel
    .join()
    .receive("error", (resp) =>
      set(Object.freeze({ ...e.counts, ready: false, error: (resp && resp.reason) || "join refused" }))
    );
  e.release = () => {
    if (--e.refs > 0) return;
    topics.delete(topic);
    e.listeners.clear();
    e.channel.leave();
  };
  topics.set(topic, e);
  return e;
}

/**
 * @typedef {object} Watch
 * @property {Counts} counts  the latest counts (a new frozen object on every change)
 * @property {(fn: (counts: Counts) => void) => () => void} subscribe  calls fn on every
 *   change; returns the function that unsubscribes
 * @property {() => void} stop  stops watching; the channel is left when its last watcher stops
 */

/**
 * watch joins topic on a phoenix Socket and follows its counts.
 *
 *     const w = watch("video:42", { socket, observe: true })
 *     const off = w.subscribe(({ viewers, users }) => render(viewers, users))
 *     // later: off(); w.stop()
 *
 * @param {string} topic
 * @param {object} opts
 * @param {object} opts.socket  a phoenix Socket (connect() it yourself, once, for the page)
 * @param {boolean} [opts.observe=false]  join as an observer: get the counts without being
 *   counted (list pages, dashboards); false joins as a viewer or user (by the socket's token)
 * @param {object} [opts.params]  more join params: {connections: true}, {partial: true}
 * @param {(counts: Counts) => void} [opts.onChange]  shorthand for subscribe(onChange)
 * @returns {Watch}
 */
export function watch(topic, opts = {}) {
  const { socket, observe = false, params = {}, onChange } = opts;
  if (!socket || typeof socket.channel !== "function") {
    throw new TypeError("headcount: watch needs {socket}, a phoenix Socket");
  }
  if (typeof topic !== "string" || topic === "") throw new TypeError("headcount: watch needs a topic");
  const joinParams = observe ? { ...params, observe: true } : { ...params };
  const e = entryFor(socket, topic, joinParams);
  const mine = new Set();
  let stopped = false;
  const w = {
    get counts() {
      return e.counts;
    },
    subscribe(fn) {
      if (stopped) return () => {};
      const wrapped = (c) => fn(c);
      e.listeners.add(wrapped);
      mine.add(wrapped);
      return () => {
        e.listeners.delete(wrapped);
        mine.delete(wrapped);
      };
    },
    stop() {
      if (stopped) return;
      stopped = true;
      for (const fn of mine) e.listeners.delete(fn);
      mine.clear();
      e.release();
    },
  };
  if (onChange) w.subscribe(onChange);
  return w;
}
