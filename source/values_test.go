package source

import "testing"

func TestApproval(t *testing.T) {
	for in, want := range map[string]string{
		"Approved": "approved", "approved": "approved", " APPROVED ": "approved",
		"Not Yet Requested": "not requested", "not requested": "not requested",
		"Requested": "requested", "Rejected": "rejected", "rejected": "rejected",
		"Cancelled": "cancelled", "No Longer Required": "not_required", "not_required": "not_required",
		"Skipped": "skipped", "": "", "Approved-ish": "",
	} {
		if got := Approval(in); got != want {
			t.Errorf("Approval(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestItemState(t *testing.T) {
	for in, want := range map[string]string{
		"Open": StateOpen, "1": StateOpen, "Work in Progress": StateWorkInProgress, "2": StateWorkInProgress,
		"Closed Complete": StateClosedComplete, "3": StateClosedComplete,
		"closed incomplete": StateClosedIncomplete, "4": StateClosedIncomplete,
		"Closed Skipped": StateClosedSkipped, "7": StateClosedSkipped,
		"Pending": StatePending, "-5": StatePending, "'-5": "", "": "", "9": "",
	} {
		if got := ItemState(in); got != want {
			t.Errorf("ItemState(%q) = %q, want %q", in, got, want)
		}
	}
}
