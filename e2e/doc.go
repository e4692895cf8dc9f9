// Package e2e holds the end-to-end tests of the headcount binary: they build
// it with the go tool, start real agents on loopback ports, and drive them
// with WebSocket clients, kill -9 and SIGTERM, as an operator would. It has
// no non-test code and must never import the project's packages: it sees
// the system only through its front door (flags, HTTP, WebSocket).
package e2e
