package tracker

// SetAnswerHook makes Handle call f between taking a catch-up answer and building it. Call it
// before t is used.
func SetAnswerHook(t *Tracker, f func()) { t.answerHook = f }
