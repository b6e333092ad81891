package session

import (
	"errors"
	"sync"
)

// ErrTooManyStreams means the principal already holds its maximum of open
// long-lived streams.
var ErrTooManyStreams = errors.New("session: too many open streams for this principal")

// Streams counts the long-lived SSE streams each principal holds open.
type Streams struct {
	max int

	mu   sync.Mutex // guards open
	open map[Principal]int
}

// NewStreams returns a counter allowing max open streams per principal
// (0 → 32).
func NewStreams(max int) *Streams {
	if max <= 0 {
		max = 32
	}
	return &Streams{max: max, open: map[Principal]int{}}
}

// Acquire takes a stream slot for p. The returned release must be called
// exactly once when the stream ends; calling it again does nothing.
func (s *Streams) Acquire(p Principal) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[p] >= s.max {
		return nil, ErrTooManyStreams
	}
	s.open[p]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.open[p] <= 1 {
				delete(s.open, p)
			} else {
				s.open[p]--
			}
		})
	}, nil
}

// Open returns the number of streams currently open in all.
func (s *Streams) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.open {
		n += c
	}
	return n
}
