package redact

import (
	"cmp"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Reasons a Result is blocked.
const (
	// ReasonTooLarge: the input exceeds Config.MaxScanBytes.
	ReasonTooLarge = "too_large"
	// ReasonBlockAction: a detector whose action is block matched.
	ReasonBlockAction = "block_action"
	// ReasonUnredactable: a live credential is still in the output after
	// redaction (only possible when it spans JSON syntax, e.g. a value
	// containing `","`). The scanner fails closed.
	ReasonUnredactable = "unredactable"
)

// maxDepth bounds the nested decodes of one string: JSON text inside a
// JSON string, and escape sequences inside a decoded string.
const maxDepth = 4

// Finding reports the matches of one detector in one scan. It never holds
// the matched text.
type Finding struct {
	Detector string // built-in name, pattern name or "live_credential"
	Action   Action
	Count    int // number of matches
}

// Result is the outcome of a scan.
type Result struct {
	// Out is the message to send: the input slice itself when nothing was
	// redacted, a new slice otherwise; nil when Blocked.
	Out []byte
	// Changed reports a redaction (Out differs from the input).
	Changed bool
	// Blocked: the message must be refused. Out is nil.
	Blocked bool
	// Reason is set when Blocked: ReasonTooLarge, ReasonBlockAction or
	// ReasonUnredactable.
	Reason string
	// Findings has one entry per detector that matched, sorted by name.
	// A text matched by several detectors (a JWT after "Bearer ") is
	// counted under each; it is redacted once.
	Findings []Finding
}

// detector is a built-in detector, a user pattern or live_credential.
type detector struct {
	name    string
	action  Action
	enabled bool
	label   []byte // [REDACTED:name]
	jsonLbl []byte // "[REDACTED:name]"
}

type rule struct {
	det        int
	re         *regexp.Regexp // unanchored; nil for an anchored rule
	anchored   *regexp.Regexp // \A(?:expr), tried at keyword occurrences
	group      int
	bound      bool
	contextual bool
	verify     func([]byte, int, int) bool
	before     func([]byte, int) bool
	match      func([]byte, int) (int, int, int, bool)
	kwBit      uint8  // bit index of the keywords, if kwMask != 0
	kwMask     uint64 // 1<<kwBit; 0: no keywords, always run
	alsoMask   uint64 // bit of the also-keywords; 0: none
}

// Scanner detects and redacts credentials. It is immutable after New and
// safe for concurrent use.
type Scanner struct {
	dets       []detector // 0: live_credential, then built-ins in priority order, then patterns
	rules      []rule
	pf         *prefilter
	contextual bool // some enabled rule is contextual
	gcp        int  // index of gcp_service_account in dets
	max        int64
	rank       *[256]uint8 // see byteRanks
	clean      *cleanSet   // short texts no detector matches (ScanString)
}

// cleanSet remembers short texts in which no detector found anything:
// header values such as "application/json" repeat on every request, and
// a detector's answer for a text never changes. Live credentials, which
// do change, are still searched for every time. The set is bounded: once
// full, nothing more is added.
type cleanSet struct {
	m sync.Map // string → struct{}
	n atomic.Int64
}

const (
	maxCleanEntries = 4096
	maxCleanLen     = 256
)

func (c *cleanSet) has(s string) bool {
	_, ok := c.m.Load(s)
	return ok
}

func (c *cleanSet) add(s string) {
	if len(s) > maxCleanLen || c.n.Load() >= maxCleanEntries {
		return
	}
	if _, loaded := c.m.LoadOrStore(strings.Clone(s), struct{}{}); !loaded {
		c.n.Add(1)
	}
}

const liveDet = 0

// New validates c and compiles the detectors.
func New(c Config) (*Scanner, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := &Scanner{max: c.MaxScanBytes, rank: byteRanks(), clean: &cleanSet{}}
	if s.max == 0 {
		s.max = DefaultMaxScanBytes
	}
	disabled := make(map[string]bool)
	for _, n := range c.Disabled {
		disabled[n] = true
	}
	index := make(map[string]int)
	add := func(name string, a Action, enabled bool) {
		index[name] = len(s.dets)
		label := "[REDACTED:" + name + "]"
		s.dets = append(s.dets, detector{name: name, action: a, enabled: enabled,
			label: []byte(label), jsonLbl: []byte(`"` + label + `"`)})
	}
	add(LiveCredential, ActionRedact, true)
	for _, n := range builtinOrder() {
		add(n, c.Actions[n], !disabled[n]) // missing → ActionRedact
	}
	s.gcp = index["gcp_service_account"]

	var kws []string
	var bits []uint8
	var hitBits uint64
	nbit := 0
	newBit := func(words []string) (uint8, uint64) {
		if len(words) == 0 || nbit >= 64 {
			return 0, 0
		}
		b := uint8(nbit)
		nbit++
		for _, w := range words {
			kws = append(kws, w)
			bits = append(bits, b)
		}
		return b, 1 << b
	}
	for _, spec := range builtinRules() {
		d := index[spec.det]
		if !s.dets[d].enabled {
			continue
		}
		r := rule{det: d, group: spec.group, bound: spec.bound, contextual: spec.contextual,
			verify: spec.verify, before: spec.before, match: spec.match}
		var err error
		if spec.anchored {
			r.anchored, err = regexp.Compile(`\A(?:` + spec.expr + `)`)
		} else {
			r.re, err = regexp.Compile(spec.expr)
		}
		if err != nil { // a bug in builtinRules, covered by tests
			return nil, fmt.Errorf("redact: built-in %s: %w", spec.det, err)
		}
		r.kwBit, r.kwMask = newBit(spec.keywords)
		_, r.alsoMask = newBit(spec.also)
		if r.kwMask == 0 || len(spec.also) > 0 && r.alsoMask == 0 {
			// More than 64 keyword sets: cannot happen with the built-ins.
			return nil, fmt.Errorf("redact: built-in %s: keyword sets exceed 64", spec.det)
		}
		if spec.anchored {
			hitBits |= r.kwMask
		}
		s.rules = append(s.rules, r)
		s.contextual = s.contextual || spec.contextual
	}
	for _, p := range c.Patterns {
		re, group, _ := compilePattern(p.Regex) // validated above
		add(p.Name, p.Action, true)
		s.rules = append(s.rules, rule{det: len(s.dets) - 1, re: re, group: group})
	}
	s.pf = newPrefilter(kws, bits, hitBits)
	return s, nil
}

// ScanText scans a non-JSON body or a header value. Text that is itself
// a JSON object or array is walked as JSON (so escaped secrets are found)
// with its bytes kept outside redacted strings; otherwise matches are
// replaced in place.
func (s *Scanner) ScanText(b []byte, live []string) Result {
	return s.Prepare(live).ScanText(b)
}

// Live is a scanner with a prepared set of live credentials, for the
// several scans of one request (arguments, headers, every event of a
// stream): the search forms of each credential are built once. It is not
// safe for concurrent use.
type Live struct {
	s       *Scanner
	needles []needle
	sc      scan   // reused by every scan: a clean scan allocates nothing
	counts  []int  // per detector, zeroed for every scan
	buf     []byte // ScanString's copy of its input
	small   [256]byte
	nbuf    [2]needle
}

// Prepare returns s with the live credentials prepared.
func (s *Scanner) Prepare(live []string) *Live {
	l := &Live{}
	l.Init(s, live)
	return l
}

// Init readies l, the zero Live or one used before, for scans by s with
// the live credentials prepared: a Live embedded in a longer-lived value
// costs no allocation of its own.
func (l *Live) Init(s *Scanner, live []string) {
	needles := l.needles[:0]
	if needles == nil {
		needles = l.nbuf[:0] // a token and an attached credential, usually
	}
	*l = Live{s: s, needles: needles, counts: l.counts}
	if len(l.counts) != len(s.dets) {
		l.counts = nil
	}
	for _, v := range live {
		l.Add(v)
	}
}

// Add adds a live credential (ignored when shorter than MinLiveLen).
func (l *Live) Add(v string) {
	l.needles = l.s.appendNeedles(l.needles, v)
}

// ScanText is [Scanner.ScanText] with the prepared live credentials.
func (l *Live) ScanText(b []byte) Result {
	s := l.s
	if int64(len(b)) > s.max {
		return Result{Blocked: true, Reason: ReasonTooLarge}
	}
	sc, counts := l.begin()
	out, changed := sc.text(b, nil, 0, counts)
	return sc.finish(out, changed, counts)
}

// ScanString is ScanText of s. Result.Out is set only when Changed (a new
// slice); s is scanned from a buffer l reuses, so a clean scan allocates
// nothing.
func (l *Live) ScanString(s string) Result {
	if l.buf == nil {
		l.buf = l.small[:0]
	}
	l.buf = append(l.buf[:0], s...)
	if l.s.clean.has(s) {
		// No detector matches s: only the live credentials are left to
		// look for.
		sc, _ := l.begin()
		if !sc.containsLive(l.buf) {
			return Result{}
		}
	}
	r := l.ScanText(l.buf)
	if !r.Changed {
		r.Out = nil
	}
	if !r.Changed && !r.Blocked && len(r.Findings) == 0 && !strings.ContainsAny(s, `\%`) {
		// A text with an escape is not remembered: what it decodes to
		// may hide another exchange's live credential, which the cached
		// path (a search of the raw bytes) would not see.
		l.s.clean.add(s)
	}
	return r
}

// ScanJSON scans one JSON value (a JSON-RPC message, tool arguments or a
// tool result): every string, member names included, is decoded, scanned
// and, if something is redacted, re-encoded in place. Bytes outside the
// changed strings are kept exactly. A string holding a JSON object or
// array is walked in turn (to depth 4), so secrets escaped twice are
// found. Input that is not well-formed JSON is an error wrapping
// ErrInvalidJSON; input above the size cap is a blocked Result, not an
// error.
func (s *Scanner) ScanJSON(msg []byte, live []string) (Result, error) {
	return s.Prepare(live).ScanJSON(msg)
}

// ScanJSON is [Scanner.ScanJSON] with the prepared live credentials.
func (l *Live) ScanJSON(msg []byte) (Result, error) {
	s := l.s
	if int64(len(msg)) > s.max {
		return Result{Blocked: true, Reason: ReasonTooLarge}, nil
	}
	sc, counts := l.begin()
	w := walker{sc: sc, in: msg, counts: counts}
	if err := w.run(); err != nil {
		return Result{}, fmt.Errorf("redact: %w", err)
	}
	out, changed := w.output()
	return sc.finish(out, changed, counts), nil
}

// begin readies l's scan state for one scan.
func (l *Live) begin() (*scan, []int) {
	l.sc.s, l.sc.live = l.s, l.needles
	if l.counts == nil {
		l.counts = make([]int, len(l.s.dets))
	}
	clear(l.counts)
	return &l.sc, l.counts
}

// scan is the state of one ScanJSON or ScanText call.
type scan struct {
	s    *Scanner
	live []needle // live credentials and their escaped forms
	hits []hit    // buffer for plain
}

// appendNeedles adds the search forms of the live credential v: itself
// and, when escaping can change it, its JSON- and URL-escaped forms.
func (s *Scanner) appendNeedles(ns []needle, v string) []needle {
	if len(v) < MinLiveLen {
		return ns
	}
	var formsBuf [6]string
	forms := append(formsBuf[:0], v)
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 || !isUnreserved(v[i]) {
			esc := string(appendJSONEscaped(nil, []byte(v)))
			forms = append(forms, strings.ReplaceAll(v, "/", `\/`), esc, strings.ReplaceAll(esc, "/", `\/`),
				url.QueryEscape(v), url.PathEscape(v))
			break
		}
	}
	for _, f := range forms {
		if !slices.ContainsFunc(ns, func(n needle) bool { return string(n.b) == f }) {
			ns = append(ns, newNeedle([]byte(f), s.rank))
		}
	}
	return ns
}

// isUnreserved: c is written as itself by JSON and URL encoding.
func isUnreserved(c byte) bool { return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' }

func (sc *scan) containsLive(b []byte) bool {
	for _, n := range sc.live {
		if n.index(b) >= 0 {
			return true
		}
	}
	return false
}

func (sc *scan) finish(out []byte, changed bool, counts []int) Result {
	r := Result{Out: out, Changed: changed}
	for i, n := range counts {
		if n == 0 {
			continue
		}
		d := &sc.s.dets[i]
		r.Findings = append(r.Findings, Finding{Detector: d.name, Action: d.action, Count: n})
		if d.action == ActionBlock && !r.Blocked {
			r.Blocked, r.Reason = true, ReasonBlockAction
		}
	}
	slices.SortFunc(r.Findings, func(a, b Finding) int { return strings.Compare(a.Detector, b.Detector) })
	if !r.Blocked && sc.containsLive(out) {
		r.Blocked, r.Reason = true, ReasonUnredactable
	}
	if r.Blocked {
		r.Out = nil
	}
	return r
}

// text scans one decoded string (or a ScanText body). key is the decoded
// member name when t is the value of an object member. Matches are added
// to counts; the result is t itself when nothing was redacted.
func (sc *scan) text(t, key []byte, depth int, counts []int) ([]byte, bool) {
	if depth < maxDepth && looksLikeJSON(t) {
		nc := make([]int, len(counts))
		w := walker{sc: sc, in: t, depth: depth + 1, counts: nc}
		if w.run() == nil {
			out, changed := w.output()
			// A live credential spanning JSON syntax of the inner text is
			// left to the plain scan below.
			if !sc.containsLive(out) {
				addCounts(counts, nc)
				return out, changed
			}
		}
	}
	if depth < maxDepth {
		// Escape sequences left in the decoded text (JSON written into a
		// log line, a string escaped twice): scan the unescaped form too.
		// If it reveals more, its redacted form replaces the text.
		if u, ok := looseUnescape(t); ok {
			tc := make([]int, len(counts))
			tout, tch := sc.plain(t, key, tc)
			uc := make([]int, len(counts))
			uout, uch := sc.text(u, key, depth+1, uc)
			more := false
			for i := range counts {
				more = more || uc[i] > tc[i] && sc.s.dets[i].action != ActionAudit
				counts[i] += max(tc[i], uc[i])
			}
			switch {
			case !more:
				return tout, tch
			case uch:
				return uout, true
			}
			return t, false // only blocking matches: nothing to rewrite
		}
	}
	return sc.plain(t, key, counts)
}

func addCounts(dst, src []int) {
	for i, n := range src {
		dst[i] += n
	}
}

type span struct{ start, end, det int }

// memberSep joins a member name and its value for the contextual rules.
const memberSep = `": "`

// plain runs the detectors and the live-credential search on t and
// redacts what is not audited.
func (sc *scan) plain(t, key []byte, counts []int) ([]byte, bool) {
	s := sc.s
	var spans []span
	mask, hits := s.pf.scan(t, sc.hits[:0])
	sortHits(hits)
	for i := range s.rules {
		r := &s.rules[i]
		if r.kwMask != 0 && (mask&r.kwMask == 0 || r.alsoMask != 0 && mask&r.alsoMask == 0) {
			continue
		}
		spans = r.find(t, 0, hitsOf(hits, r.kwBit), spans)
	}
	found := len(spans)
	if key != nil && s.contextual {
		if km, _ := s.pf.scan(key, nil); km != 0 {
			var syn []byte
			for i := range s.rules {
				r := &s.rules[i]
				if !r.contextual || km&r.kwMask == 0 {
					continue
				}
				if syn == nil {
					syn = append(append(append(make([]byte, 0, len(key)+len(memberSep)+len(t)), key...), memberSep...), t...)
					_, hits = s.pf.scan(syn, hits[:0])
					sortHits(hits)
				}
				spans = r.find(syn, len(key)+len(memberSep), hitsOf(hits, r.kwBit), spans)
			}
		}
	}
	sc.hits = hits
	if len(spans) > found {
		// A rule found by both passes counts once.
		slices.SortFunc(spans, func(a, b span) int {
			return cmp.Or(a.start-b.start, a.end-b.end, a.det-b.det)
		})
		spans = slices.Compact(spans)
	}
	for _, n := range sc.live {
		for i := 0; ; {
			j := n.index(t[i:])
			if j < 0 {
				break
			}
			spans = append(spans, span{i + j, i + j + len(n.b), liveDet})
			i += j + len(n.b)
		}
	}
	if len(spans) == 0 {
		return t, false
	}
	for _, sp := range spans {
		counts[sp.det]++
	}
	return s.redact(t, spans)
}

// sortHits orders keyword occurrences by bit, then start.
func sortHits(hits []hit) {
	if !slices.IsSortedFunc(hits, cmpHit) {
		slices.SortFunc(hits, cmpHit)
	}
}

func cmpHit(a, b hit) int { return cmp.Or(int(a.bit)-int(b.bit), a.start-b.start) }

// hitsOf returns the occurrences of the keywords of bit, from sorted hits.
func hitsOf(hits []hit, bit uint8) []hit {
	i, _ := slices.BinarySearchFunc(hits, hit{bit: bit, start: -1 << 62}, cmpHit)
	j := i
	for j < len(hits) && hits[j].bit == bit {
		j++
	}
	return hits[i:j]
}

// find appends the matches of r in text that lie at or after off, shifted
// by -off. An anchored rule is tried at each keyword occurrence in hits
// (ascending, not inside the previous match, as FindAll would); others
// search the whole text.
func (r *rule) find(text []byte, off int, hits []hit, spans []span) []span {
	if r.anchored == nil {
		var locs [][]int
		if r.group == 0 {
			locs = r.re.FindAllIndex(text, -1)
		} else {
			locs = r.re.FindAllSubmatchIndex(text, -1)
		}
		for _, l := range locs {
			spans = r.accept(text, off, l[2*r.group], l[2*r.group+1], spans)
		}
		return spans
	}
	last, prev := 0, -1
	for _, h := range hits {
		p := h.start
		if p < last || p == prev || r.before != nil && !r.before(text, p) {
			continue
		}
		prev = p
		if r.match != nil {
			if s, e, end, ok := r.match(text, p); ok {
				last = end
				spans = r.accept(text, off, s, e, spans)
			}
			continue
		}
		l := r.anchored.FindSubmatchIndex(text[p:])
		if l == nil {
			continue
		}
		last = p + l[1]
		if l[2*r.group] >= 0 {
			spans = r.accept(text, off, p+l[2*r.group], p+l[2*r.group+1], spans)
		}
	}
	return spans
}

// accept appends text[s:e] if it passes the rule's checks.
func (r *rule) accept(text []byte, off, s, e int, spans []span) []span {
	if s < off || e <= s {
		return spans
	}
	if r.bound && (s > 0 && isAlnum(text[s-1]) || e < len(text) && isAlnum(text[e])) {
		return spans
	}
	if r.verify != nil && !r.verify(text, s, e) {
		return spans
	}
	return append(spans, span{s - off, e - off, r.det})
}

// redact replaces the union of the non-audit spans. Overlapping spans
// become one redaction labelled with the highest-priority detector.
func (s *Scanner) redact(t []byte, spans []span) ([]byte, bool) {
	spans = slices.DeleteFunc(spans, func(sp span) bool { return s.dets[sp.det].action == ActionAudit })
	if len(spans) == 0 {
		return t, false
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	out := make([]byte, 0, len(t)+32)
	prev := 0
	for i := 0; i < len(spans); {
		start, end, det := spans[i].start, spans[i].end, spans[i].det
		for i++; i < len(spans) && spans[i].start < end; i++ {
			end = max(end, spans[i].end)
			det = min(det, spans[i].det)
		}
		out = append(out, t[prev:start]...)
		out = append(out, s.dets[det].label...)
		prev = end
	}
	return append(out, t[prev:]...), true
}

// looksLikeJSON reports whether t starts, after whitespace, with { or [.
func looksLikeJSON(t []byte) bool {
	for _, c := range t {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}
