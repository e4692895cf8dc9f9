// useHeadcount: the counts of a Headcount topic in a React component.
//
//     const { viewers, users, ready } = useHeadcount("video:42", { socket, observe: true })
//
// It joins on mount (or when topic, socket or options change) and leaves on unmount;
// components watching one topic on one socket share its channel.

import { useEffect, useState } from "react";
import { INITIAL_COUNTS, watch } from "./index.js";

/**
 * useHeadcount returns the live counts of topic (see watch for the options). It returns
 * INITIAL_COUNTS ({viewers: 0, users: 0, ready: false}) until the first presence_state, and
 * while topic or socket is missing.
 * @param {string} topic
 * @param {{socket: object, observe?: boolean, params?: object}} opts
 * @returns {import("./index.js").Counts}
 */
export function useHeadcount(topic, opts = {}) {
  const { socket, observe = false, params } = opts;
  const [counts, setCounts] = useState(INITIAL_COUNTS);
  const paramsKey = JSON.stringify(params ?? {});
  useEffect(() => {
    if (!socket || !topic) {
      setCounts(INITIAL_COUNTS);
      return undefined;
    }
    const w = watch(topic, { socket, observe, params: JSON.parse(paramsKey) });
    setCounts(w.counts);
    const off = w.subscribe(setCounts);
    return () => {
      off();
      w.stop();
    };
  }, [socket, topic, observe, paramsKey]);
  return counts;
}
