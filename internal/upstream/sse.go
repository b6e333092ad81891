package upstream

// This file implements a pass-through framer for Server-Sent Events. See
// https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
)

// eventStream relays an SSE body event by event. Each Read returns bytes of
// at most one event, so the reverse proxy flushes every event as soon as it
// is complete. Events pass unchanged unless the transform returns new data;
// then the event is re-encoded with its other fields (id, event, retry,
// comments) kept in order.
type eventStream struct {
	src   io.ReadCloser
	br    *bufio.Reader
	f     func([]byte) ([]byte, error)
	field func([]byte) (bool, error) // checks every line but data lines; nil keeps them
	max   int64
	done  func(int64, error)

	raw     []byte       // the current event as received
	data    []byte       // its data field values joined by "\n"
	sawData bool         // the current event has a data field
	dropped bool         // a line of the current event was dropped
	started bool         // the stream's first bytes were examined
	out     bytes.Buffer // bytes ready for the client
	n       int64        // bytes handed to the client
	err     error        // sticky terminal error
	once    sync.Once
}

var (
	errEventTooLarge = errors.New("upstream SSE event too large")
	errBareCR        = errors.New("upstream SSE stream uses bare CR line endings")
)

func newEventStream(src io.ReadCloser, f func([]byte) ([]byte, error), field func([]byte) (bool, error), max int64, done func(int64, error)) io.ReadCloser {
	if f == nil {
		field = nil // no transform: a pure pass-through
	}
	return &eventStream{src: src, br: bufio.NewReaderSize(src, 4<<10), f: f, field: field, max: max, done: done}
}

func (s *eventStream) Read(p []byte) (int, error) {
	for s.out.Len() == 0 {
		if s.err != nil {
			s.finish(s.err)
			return 0, s.err
		}
		s.err = s.next()
	}
	n, _ := s.out.Read(p)
	s.n += int64(n)
	return n, nil
}

func (s *eventStream) Close() error {
	err := s.src.Close()
	s.finish(nil)
	return err
}

func (s *eventStream) finish(err error) {
	s.once.Do(func() {
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if s.done != nil {
			s.done(s.n, err)
		}
	})
}

// next reads lines until it has output for the client: a complete event, a
// leading comment (keep-alives must not wait for the next event), or the
// remains of the stream at EOF.
func (s *eventStream) next() error {
	if !s.started {
		s.started = true
		if s.f != nil {
			// A leading byte-order mark is not part of the first field
			// name for a client (WHATWG), so it is not for us either.
			if b, _ := s.br.Peek(3); bytes.Equal(b, []byte("\xEF\xBB\xBF")) {
				_, _ = s.br.Discard(3)
			}
		}
	}
	for {
		line, err := s.readLine()
		if len(line) > 0 {
			if err := s.addLine(line); err != nil {
				return err
			}
			if isBlank(line) {
				return s.emit()
			}
			if line[0] == ':' && len(s.raw) == len(line) {
				s.out.Write(s.raw) // a comment before any field: pass it now
				s.raw = s.raw[:0]
				return nil
			}
		}
		if err != nil {
			if len(s.raw) > 0 && s.f == nil {
				s.out.Write(s.raw) // an unterminated event at EOF: relay as is
			}
			// With a transform, an unterminated event is dropped: a client
			// discards it too (WHATWG), and it was never inspected.
			s.raw = s.raw[:0]
			return err
		}
	}
}

// readLine returns one line including its terminator ("\n" or "\r\n").
func (s *eventStream) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A long line: accumulate it in the event buffer piece by piece.
		buf := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if int64(len(buf)+len(s.raw)) > s.max {
				return nil, errEventTooLarge
			}
			line, err = s.br.ReadSlice('\n')
			buf = append(buf, line...)
		}
		return buf, err
	}
	return line, err
}

func (s *eventStream) addLine(line []byte) error {
	if int64(len(s.raw)+len(line)) > s.max {
		return errEventTooLarge
	}
	if s.f != nil && hasBareCR(line) {
		// A bare CR ends a line for a client but not for this framer:
		// refuse rather than inspect something the client reads otherwise.
		return errBareCR
	}
	if s.f == nil {
		s.raw = append(s.raw, line...)
		return nil
	}
	field, value := splitField(trimEOL(line))
	if string(field) != "data" && s.field != nil && !isBlank(line) {
		// Comments, id, event, retry and unknown fields reach the
		// client too (an id comes back as Last-Event-ID): each is
		// checked, and dropped when the check says so.
		keep, err := s.field(trimEOL(line))
		if err != nil {
			return err
		}
		if !keep {
			s.dropped = true
			return nil
		}
	}
	s.raw = append(s.raw, line...)
	if string(field) == "data" {
		if s.sawData {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, value...)
		s.sawData = true
	}
	return nil
}

func (s *eventStream) emit() error {
	defer func() { s.raw, s.data, s.sawData, s.dropped = s.raw[:0], s.data[:0], false, false }()
	if s.dropped && isBlank(s.raw) {
		return nil // all that was left of the event was its end
	}
	if s.f == nil || !s.sawData {
		s.out.Write(s.raw)
		return nil
	}
	repl, err := s.f(s.data)
	if err != nil {
		return err
	}
	if repl == nil {
		s.out.Write(s.raw)
		return nil
	}
	if len(repl) == 0 {
		return nil // dropped: nothing of the event reaches the client
	}
	wroteData := false
	for rest := s.raw; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i+1]
		rest = rest[i+1:]
		if isBlank(line) {
			continue
		}
		if f, _ := splitField(trimEOL(line)); string(f) == "data" {
			if !wroteData {
				for d := range bytes.SplitSeq(repl, []byte("\n")) {
					s.out.WriteString("data: ")
					s.out.Write(d)
					s.out.WriteByte('\n')
				}
				wroteData = true
			}
			continue
		}
		s.out.Write(line)
	}
	s.out.WriteByte('\n')
	return nil
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

func isBlank(line []byte) bool { return len(trimEOL(line)) == 0 }

// splitField splits "field: value" per the SSE rules: one leading space of
// the value is dropped; a line without a colon is a field with empty value.
func splitField(line []byte) (field, value []byte) {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return line, nil
	}
	field, value = line[:i], line[i+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return field, value
}

// hasBareCR reports a CR that is not followed by LF.
func hasBareCR(line []byte) bool {
	for i, c := range line {
		if c == '\r' && (i+1 == len(line) || line[i+1] != '\n') {
			return true
		}
	}
	return false
}
