package source

import "strings"

// labelToField maps the column labels ServiceNow writes with
// sysparm_export_column_header_label=true to field names. Keys are
// lower-cased labels; dot-walks are translated part by part.
var labelToField = map[string]string{
	"number":        "number",
	"sys id":        "sys_id",
	"approval":      "approval",
	"state":         "state",
	"item":          "cat_item",
	"catalog item":  "cat_item",
	"requested for": "requested_for",
	"user id":       "user_name",
	"email":         "email",
	"first name":    "first_name",
	"last name":     "last_name",
	"name":          "name",
	"active":        "active",
	"updated":       "sys_updated_on",
	"created":       "sys_created_on",
	"stage":         "stage",
	"request":       "request",
	// more sc_req_item and sys_user labels, for extra columns
	"user name":         "user_name",
	"e-mail":            "email",
	"short description": "short_description",
	"description":       "description",
	"opened by":         "opened_by",
	"opened":            "opened_at",
	"closed":            "closed_at",
	"due date":          "due_date",
	"assignment group":  "assignment_group",
	"assigned to":       "assigned_to",
	"approval set":      "approval_set",
	"quantity":          "quantity",
	"price":             "price",
	"priority":          "priority",
	"updated by":        "sys_updated_by",
	"created by":        "sys_created_by",
}

// CanonicalField returns the ServiceNow field name for a column header or a
// mapping placeholder given either as a field name ("requested_for.email")
// or as an export label ("Requested for.Email").
func CanonicalField(name string) string {
	name = strings.TrimSpace(name)
	parts := strings.Split(name, ".")
	for i, p := range parts {
		key := strings.ToLower(strings.TrimSpace(p))
		if f, ok := labelToField[key]; ok {
			parts[i] = f
		} else {
			parts[i] = key
		}
	}
	return strings.Join(parts, ".")
}
