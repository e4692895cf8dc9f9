// Package e2e holds the end-to-end tests of the headcount binary: they build
// it with the go tool, start real agents on loopback ports, and drive them
// with WebSocket clients, kill -9 and SIGTERM, as an operator would. The
// network-fault tests (faults_linux_test.go) run each agent in a network
// namespace of its own, made and removed by the test (netns_linux_test.go),
// and cut traffic there with iptables; they need root, ip and iptables. It has
// no non-test code and must never import the project's packages: it sees
// the system only through its front door (flags, HTTP, WebSocket).
package e2e
