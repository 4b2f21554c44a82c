package source

import "strings"

// ServiceNow writes choice fields as display labels by default (CSV exports,
// sysparm_display_value=true) and as raw values otherwise. These helpers map
// both to the raw value, so that the engine's filters need only one spelling.
// Instances can rename labels or add choices: an unknown value gives "".

var approvalValues = map[string]string{
	"not yet requested": "not requested", "not requested": "not requested",
	"requested": "requested",
	"approved":  "approved",
	"rejected":  "rejected",
	"cancelled": "cancelled", "canceled": "cancelled",
	"no longer required": "not_required", "not_required": "not_required", "not required": "not_required",
	"skipped":   "skipped",
	"duplicate": "duplicate",
}

// Approval returns the raw approval value ("approved") for a display label
// ("Approved") or a raw value, or "" when it is not a known choice.
func Approval(v string) string {
	return approvalValues[strings.ToLower(strings.TrimSpace(v))]
}

// sc_req_item state codes; see ../shared/reference/servicenow.md §4.
var itemStates = map[string]string{
	"pending": "-5", "-5": "-5",
	"open": "1", "1": "1",
	"work in progress": "2", "2": "2",
	"closed complete": "3", "3": "3",
	"closed incomplete": "4", "4": "4",
	"closed skipped": "7", "7": "7",
}

// Item states as raw codes, for comparing with ItemState.
const (
	StatePending          = "-5"
	StateOpen             = "1"
	StateWorkInProgress   = "2"
	StateClosedComplete   = "3"
	StateClosedIncomplete = "4"
	StateClosedSkipped    = "7"
)

// ItemState returns the raw sc_req_item state code ("3") for a display label
// ("Closed Complete") or a code, or "" when it is not a known state.
func ItemState(v string) string {
	return itemStates[strings.ToLower(strings.TrimSpace(v))]
}
