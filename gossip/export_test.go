package gossip

// FlushBurst is flushBurst, for the tests of the flush pacing in package gossip_test.
const FlushBurst = flushBurst
