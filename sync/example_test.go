package sync_test

import (
	"fmt"
	"os"
	"time"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/source"
	dsync "github.com/duosync/duosync/sync"
)

// The engine's pipeline, as the CLI runs it: requests → desired state →
// (read Duo) → diff → guards → plan. Apply would follow with a DuoWriter.
func Example() {
	reqs := []source.Request{{Fields: map[string]string{
		"number": "RITM0010001", "approval": "approved", "state": "1",
		"requested_for.email": "jane.doe@example.com", "requested_for.user_name": "jdoe",
		"requested_for.name": "Jane Doe", "requested_for.first_name": "Jane", "requested_for.last_name": "Doe",
		"variables.duo_group": "VPN Users",
	}}}
	desired, err := dsync.BuildDesired(reqs, nil, dsync.DefaultMapping(), dsync.Filter{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// What a DuoReader would return for dsync.Usernames(desired).
	have := dsync.Have{Groups: []duo.Group{{ID: "DG1", Name: "VPN Users"}}, Total: 5}
	plan := dsync.Diff(have, desired, nil, dsync.DefaultPolicy(), time.Now())
	if _, err := dsync.CheckGuards(plan, desired, have.Total, dsync.DefaultPolicy(), false); err != nil {
		fmt.Println(err)
	}
	_ = dsync.Render(os.Stdout, plan)
	// Output:
	// max_creates: 1 user to create exceeds 10% of 5 existing Duo users (0); use --force to override
	// duosync will make these changes in Duo. Actions are marked:
	//   + create
	//   > send an enrollment email
	//   = add to a group
	//
	// # user jane.doe@example.com will be created, for RITM0010001
	//   + user jane.doe@example.com  (not in Duo)
	//       email:     jane.doe@example.com
	//       realname:  Jane Doe
	//       firstname: Jane
	//       lastname:  Doe
	//       aliases:   jdoe, GLOBAL\jdoe
	//       notes:     RITM0010001
	//   > enroll jane.doe@example.com: email jane.doe@example.com  (new user)
	//   = add jane.doe@example.com to group "VPN Users"  (new user; RITM0010001)
	//
	// Plan: 1 user to create, 1 enrollment to send, 1 membership to add.
}
