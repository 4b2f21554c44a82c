package sync

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Policy is the config's policy section: what the engine may write, and the
// guards that stop a suspicious run before its first write.
type Policy struct {
	Enroll              bool          `yaml:"enroll" json:"enroll"`
	EnrollValidSecs     int           `yaml:"enroll_valid_secs" json:"enroll_valid_secs"`
	ResendAfter         time.Duration `yaml:"resend_after" json:"resend_after"`
	MaxResends          int           `yaml:"max_resends" json:"max_resends"`
	CreateMissingGroups bool          `yaml:"create_missing_groups" json:"create_missing_groups"`
	UpdateExisting      bool          `yaml:"update_existing" json:"update_existing"`
	MaxCreates          Limit         `yaml:"max_creates" json:"max_creates"` // count or percent of existing Duo users
	MaxChanges          Limit         `yaml:"max_changes" json:"max_changes"` // count of actions
	MaxInvalid          Limit         `yaml:"max_invalid" json:"max_invalid"` // count or percent of rows read
}

// DefaultPolicy returns DESIGN.md's defaults. Decode the config over it so
// that keys left out keep their default.
func DefaultPolicy() Policy {
	return Policy{
		Enroll:          true,
		EnrollValidSecs: 86400,
		ResendAfter:     168 * time.Hour,
		MaxResends:      2,
		MaxCreates:      Percent(10),
		MaxChanges:      Count(5000),
		MaxInvalid:      Percent(5),
	}
}

// Validate reports the first nonsensical value, naming its config key.
func (p Policy) Validate() error {
	switch {
	case p.EnrollValidSecs < 0:
		return fmt.Errorf("policy.enroll_valid_secs: %d is negative", p.EnrollValidSecs)
	case p.ResendAfter < 0:
		return fmt.Errorf("policy.resend_after: %s is negative", p.ResendAfter)
	case p.MaxResends < 0:
		return fmt.Errorf("policy.max_resends: %d is negative", p.MaxResends)
	case p.MaxChanges.percent:
		return fmt.Errorf("policy.max_changes: %s: give a count of actions, not a percent", p.MaxChanges)
	}
	return nil
}

// Limit is a guard threshold: a count ("5000"), a percent of a base
// ("10%"), or no limit ("" or "off").
type Limit struct {
	set     bool
	percent bool
	value   float64
}

// Count returns a limit of n.
func Count(n int) Limit { return Limit{set: true, value: float64(n)} }

// Percent returns a limit of pct percent of a base.
func Percent(pct float64) Limit { return Limit{set: true, percent: true, value: pct} }

// NoLimit never trips.
func NoLimit() Limit { return Limit{} }

// ParseLimit parses "250", "10%", "2.5%", "" or "off".
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "off", "none", "unlimited":
		return Limit{}, nil
	}
	if num, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return Limit{}, fmt.Errorf("invalid limit %q: want a count like 500 or a percent like 10%%", s)
		}
		return Percent(v), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return Limit{}, fmt.Errorf("invalid limit %q: want a count like 500 or a percent like 10%%", s)
	}
	return Count(n), nil
}

// UnmarshalText lets YAML (and flags) give a limit as a number or a string.
func (l *Limit) UnmarshalText(b []byte) error {
	v, err := ParseLimit(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// MarshalText writes the limit back in the form ParseLimit reads.
func (l Limit) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

func (l Limit) String() string {
	switch {
	case !l.set:
		return "off"
	case l.percent:
		return strconv.FormatFloat(l.value, 'f', -1, 64) + "%"
	default:
		return strconv.FormatFloat(l.value, 'f', -1, 64)
	}
}

// IsSet reports whether the limit can trip.
func (l Limit) IsSet() bool { return l.set }

// Allowed is the largest number that passes, given the base of a percent
// (rounded down: 10% of 1,005 users allows 100).
func (l Limit) Allowed(base int) int {
	if !l.set {
		return math.MaxInt
	}
	if !l.percent {
		return int(l.value)
	}
	return int(math.Floor(l.value*float64(base)/100 + 1e-9))
}

// Exceeded reports whether n is over the limit.
func (l Limit) Exceeded(n, base int) bool { return l.set && n > l.Allowed(base) }
