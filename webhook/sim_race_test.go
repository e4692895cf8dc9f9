//go:build race

package webhook_test

// simDefaultRuns is smaller under the race detector, which slows the simulator about tenfold;
// a plain run (and -webhook.sims) plays more.
const simDefaultRuns = 40
