// Package redisbaseline is the hand-written Redis baseline that Headcount's "one track visible on
// every node" latency (BENCHMARKS.md [A]) is compared with: a writer records a presence in Redis
// (HINCRBY of the topic's count and SADD of the member) and then PUBLISHes the change, and N
// subscriber connections stand for the N nodes that must see it. Latency runs from the write until
// every subscriber has the message.
//
// It is its own module so that the main module does not depend on a Redis client, and so that
// `go test ./...` in the repository root (and CI) never runs it: it needs a redis-server binary
// (Debian's redis-server package). The benchmark starts its own redis-server on a free loopback
// port with its files in a temporary directory, and stops it at the end. It has no code that
// Headcount uses: only the benchmark in redis_test.go.
//
// Run it from this directory:
//
//	go test -run '^$' -bench RedisVisible -benchtime 500x .
package redisbaseline
