"use strict";
// A Redux store for a topic's counts, in the style of the seed article: redux-actions
// creates the actions and the reducer, and the state is an immutable Record. The gateway
// sends {"viewers":{"count":N},"users":{"count":M}} after every join and diffs with both
// classes in both halves, so count + joins - leaves is always right.

const { createAction, handleActions } = require("redux-actions");
const { Record } = require("immutable");
const { legacy_createStore: createStore } = require("redux");

const Tally = Record({ count: 0 });
const Counts = Record({ viewers: Tally(), users: Tally() });

const presenceState = createAction("PRESENCE/STATE");
const presenceDiff = createAction("PRESENCE/DIFF");

const applyDiff = (tally, joins, leaves) => tally.update("count", (n) => n + joins.count - leaves.count);

const countsReducer = handleActions(
  {
    [presenceState]: (_state, { payload }) =>
      Counts({ viewers: Tally(payload.viewers), users: Tally(payload.users) }),
    [presenceDiff]: (state, { payload: { joins, leaves } }) =>
      state.withMutations((s) =>
        s
          .set("viewers", applyDiff(s.viewers, joins.viewers, leaves.viewers))
          .set("users", applyDiff(s.users, joins.users, leaves.users))
      ),
  },
  Counts()
);

// watchTopic joins topic on socket and feeds its presence events into a new store, the way
// the seed article binds its channel. It returns {store, channel, states}, where states
// counts the presence_state pushes received (one per join or rejoin). params is the join
// payload ({observe: true} for an observer).
function watchTopic(socket, topic, params = {}) {
  const store = createStore(countsReducer);
  const channel = socket.channel(topic, params);
  const watched = { store, channel, states: 0 };
  channel.on("presence_state", (payload) => {
    watched.states++;
    store.dispatch(presenceState(payload));
  });
  channel.on("presence_diff", (payload) => store.dispatch(presenceDiff(payload)));
  return watched;
}

const countsOf = (store) => ({ viewers: store.getState().viewers.count, users: store.getState().users.count });

module.exports = { countsReducer, presenceState, presenceDiff, watchTopic, countsOf };
