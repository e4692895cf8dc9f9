package webhook

// Owner returns the member that sends topic's events: the one with the highest rendezvous score
// among members (ties, which need a 64-bit collision, go to the smaller name). It returns "" for
// no members. Every node computes the same owner from the same member set.
func Owner(topic string, members []string) string {
	var best string
	var bestScore uint64
	for i, m := range members {
		s := score(m, topic)
		if i == 0 || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// score is FNV-1a over member, a zero byte and topic, finished with splitmix64's mixer so that
// similar names spread over the whole range. It must never change: nodes of one cluster running
// different versions must agree on owners.
func score(member, topic string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(member); i++ {
		h = (h ^ uint64(member[i])) * prime
	}
	h *= prime // the zero separator
	for i := 0; i < len(topic); i++ {
		h = (h ^ uint64(topic[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
