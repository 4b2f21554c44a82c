package source

import (
	"bytes"
	"io"
	"math"
)

// limiter sits between the decoded text and encoding/csv and bounds what
// csv.Reader can be made to buffer: encoding/csv reads a whole record into
// memory, so a 50 MB field, or an unterminated quote early in a big file,
// would otherwise be held whole.
//
// It follows RFC 4180 with a small state machine that agrees with
// csv.Reader's strict mode on where records start and end. When a field or a
// record grows past its limit, the limiter closes an open quote, drops the
// rest of the record except its newlines (so csv.Reader's line numbers stay
// right), and remembers the record's first line; the reader then reports that
// record as a Problem instead of using its truncated fields.
//
// It also bounds the number of fields of a record: csv.Reader keeps a string
// header and an index per field, so a line of a million one-byte fields costs
// far more memory than its size.
type limiter struct {
	src        io.Reader
	buf        []byte
	pos, end   int
	err        error
	fieldLimit int
	recLimit   int // for data records
	maxFields  int
	// headerLimit bounds the first record (the header) instead of
	// recLimit: a header is short, and everything built from it (names,
	// lookups, messages) is held for the whole file.
	headerLimit int
	curLimit    int  // the record limit of the record being read
	seenRecord  bool // a record has started: the next one is data

	state      lexState
	line       int // line of the next byte, 1-based
	recStart   int // first line of the current record; 0 between records
	field      int // index of the current field in the record
	fieldBytes int
	recBytes   int

	pendingCR    bool // a CR between records, judged by the next byte
	discarding   bool
	pendingQuote bool
	eof          bool
	cuts         map[int]cut // records cut short, by first line
}

// cut says why a record was cut short.
type cut struct {
	field  int  // index of the field that was too long
	record bool // the record as a whole was too long
	fields bool // the record has more than maxFields fields
}

type lexState uint8

const (
	fieldStart    lexState = iota // before the first byte of a field
	unquoted                      // in a field without quotes
	quoted                        // in a quoted field
	quoteInQuoted                 // just after a quote inside a quoted field: closing, or the first of ""
	crAfterQuote                  // a CR after a closing quote: fine before a LF only
	skipLine                      // csv.Reader reported a quoting error and drops the rest of the line
)

// newLexer is the limiter's state machine alone, with no limits, to run
// over raw bytes.
func newLexer() *limiter {
	return newLimiter(nil, math.MaxInt, math.MaxInt)
}

// newLimiter bounds fields and records only; withHeader and withMaxFields
// add the other bounds.
func newLimiter(src io.Reader, fieldLimit, recLimit int) *limiter {
	return &limiter{
		src:         src,
		buf:         make([]byte, 64<<10),
		fieldLimit:  fieldLimit,
		recLimit:    recLimit,
		maxFields:   math.MaxInt,
		headerLimit: recLimit,
		curLimit:    recLimit,
		line:        1,
		cuts:        map[int]cut{},
	}
}

// withHeader bounds the first record at n bytes (or recLimit if smaller).
func (l *limiter) withHeader(n int) *limiter {
	l.headerLimit = min(n, l.recLimit)
	if !l.seenRecord {
		l.curLimit = l.headerLimit
	}
	return l
}

// withMaxFields bounds every record at n fields.
func (l *limiter) withMaxFields(n int) *limiter {
	l.maxFields = n
	return l
}

// takeCut reports (once) whether the record starting at line was cut short.
func (l *limiter) takeCut(line int) (cut, bool) {
	c, ok := l.cuts[line]
	if ok {
		delete(l.cuts, line)
	}
	return c, ok
}

// unterminated reports, once the input is exhausted, whether it ended inside
// a quoted field, and the first line of that record.
func (l *limiter) unterminated() (startLine int, ok bool) {
	if l.eof && l.recStart > 0 && l.state == quoted {
		return l.recStart, true
	}
	return 0, false
}

func (l *limiter) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if l.pendingQuote {
			p[n] = '"'
			n++
			l.pendingQuote = false
			continue
		}
		if l.pos == l.end {
			if n > 0 {
				return n, nil
			}
			if l.err != nil {
				if l.err == io.EOF {
					l.eof = true
				}
				return 0, l.err
			}
			l.end, l.err = l.src.Read(l.buf)
			l.pos = 0
			continue
		}
		avail := l.buf[l.pos:l.end]
		if len(avail) > len(p)-n {
			avail = avail[:len(p)-n]
		}
		if l.discarding {
			// Drop the rest of the record, keeping its newlines.
			k, newlines := l.discard(avail)
			l.pos += k
			for ; newlines > 0; newlines-- {
				p[n] = '\n'
				n++
			}
			continue
		}
		k, over := l.advance(avail)
		n += copy(p[n:], avail[:k])
		l.pos += k
		if over {
			l.cuts[l.recStart] = cut{field: l.field, record: l.recBytes > l.curLimit, fields: l.field >= l.maxFields}
			l.discarding = true
			// close the quote for csv.Reader, so the newlines that follow end the record
			l.pendingQuote = l.state == quoted
		}
	}
	return n, nil
}

// discard runs the state machine over b without passing bytes on, until
// the record ends. It returns the bytes taken and the newlines among them.
func (l *limiter) discard(b []byte) (k, newlines int) {
	// no record starts while discarding (it stops at the end of the cut
	// one), so lifting the current record's limits is enough
	fieldLimit, curLimit, maxFields := l.fieldLimit, l.curLimit, l.maxFields
	l.fieldLimit, l.curLimit, l.maxFields = math.MaxInt, math.MaxInt, math.MaxInt
	defer func() { l.fieldLimit, l.curLimit, l.maxFields = fieldLimit, curLimit, maxFields }()
	for k < len(b) && l.discarding {
		line := l.line
		// a record can only end at a newline: advance to each in turn and
		// stop at the one that ends it
		var end int
		if j := bytes.IndexByte(b[k:], '\n'); j >= 0 {
			end = k + j + 1
		} else {
			end = len(b)
		}
		n, _ := l.advance(b[k:end])
		k += n
		newlines += l.line - line
		if l.recStart == 0 {
			l.discarding = false
		}
	}
	return k, newlines
}

// byteClass marks the bytes that can change the lexer's state.
var byteClass = [256]bool{'"': true, ',': true, '\n': true, '\r': true}

// advance runs the state machine over b and returns how many bytes it took:
// all of them, or fewer when a field or record went over its limit (over).
// Runs of ordinary bytes inside a field are taken in one step, which keeps
// this close to the speed of a plain copy.
func (l *limiter) advance(b []byte) (k int, over bool) {
	i := 0
	for i < len(b) {
		if l.state == quoted && l.recStart != 0 && b[i] != '"' {
			// inside quotes only a quote matters: jump to it, counting lines
			seg := b[i:]
			if j := bytes.IndexByte(seg, '"'); j >= 0 {
				seg = seg[:j]
			}
			if l.fieldBytes+len(seg) > l.fieldLimit {
				seg = seg[:l.fieldLimit-l.fieldBytes+1]
			}
			l.line += bytes.Count(seg, []byte{'\n'})
			l.fieldBytes += len(seg)
			l.recBytes += len(seg)
			i += len(seg)
		} else if l.recStart != 0 && (l.state == unquoted || l.state == skipLine) && !byteClass[b[i]] {
			j := i + 1
			for j < len(b) && !byteClass[b[j]] {
				j++
			}
			l.fieldBytes += j - i
			l.recBytes += j - i
			i = j
		} else {
			l.step(b[i])
			i++
		}
		if l.recStart != 0 && (l.fieldBytes > l.fieldLimit || l.recBytes > l.curLimit || l.field >= l.maxFields) {
			return i, true
		}
	}
	return i, false
}

// step advances the state machine by one byte. csv.Reader treats a CR as
// data except right before a LF, so a CR waits for the next byte to be
// judged (pendingCR between records, crAfterQuote after a closing quote).
func (l *limiter) step(c byte) {
	if l.recStart == 0 {
		switch {
		case l.pendingCR && c == '\n': // a blank CRLF line
			l.pendingCR = false
			l.line++
			return
		case l.pendingCR: // the CR was data: the record started with it
			l.pendingCR = false
			l.startRecord()
			l.state = unquoted
		case c == '\n':
			l.line++
			return
		case c == '\r':
			l.pendingCR = true
			return
		default:
			l.startRecord()
		}
	}
	l.fieldBytes++
	l.recBytes++
	switch l.state {
	case fieldStart, unquoted:
		switch c {
		case '"':
			if l.state == fieldStart {
				l.state = quoted
			} else {
				// a bare quote: csv.Reader reports the record and drops
				// the rest of the line
				l.state = skipLine
			}
		case ',':
			l.state, l.field, l.fieldBytes = fieldStart, l.field+1, 0
		case '\n':
			l.endRecord()
		default:
			l.state = unquoted
		}
	case quoted:
		if c == '"' {
			l.state = quoteInQuoted
		} else if c == '\n' {
			l.line++
		}
	case quoteInQuoted, crAfterQuote:
		switch {
		case c == '"' && l.state == quoteInQuoted:
			l.state = quoted // "" is an escaped quote
		case c == ',' && l.state == quoteInQuoted:
			l.state, l.field, l.fieldBytes = fieldStart, l.field+1, 0
		case c == '\n':
			l.endRecord()
		case c == '\r' && l.state == quoteInQuoted:
			l.state = crAfterQuote
		default:
			// text after a closing quote: a quoting error, the rest of the
			// line is dropped
			l.state = skipLine
		}
	case skipLine:
		if c == '\n' {
			l.endRecord()
		}
	}
}

func (l *limiter) startRecord() {
	l.recStart, l.field, l.fieldBytes, l.recBytes, l.state = l.line, 0, 0, 0, fieldStart
	if l.seenRecord {
		l.curLimit = l.recLimit
	} else {
		l.curLimit = l.headerLimit
		l.seenRecord = true
	}
}

func (l *limiter) endRecord() {
	l.line++
	l.recStart = 0
	l.state = fieldStart
}
