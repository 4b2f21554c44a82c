package servicenow

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The Table API's JSON shapes (servicenow.md §1): every scalar is a string;
// a reference is {"link","value"} (display_value=false),
// {"display_value","link"} (true) or {"display_value","link","value"} (all),
// or a plain string with sysparm_exclude_reference_link=true; under "all"
// other fields are {"display_value","value"}; an empty reference is "".

// fieldValue is one field as the API sent it.
type fieldValue struct {
	display, value, link            string
	hasDisplay, hasValue, reference bool
	object                          bool
}

func decodeField(raw json.RawMessage) (fieldValue, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return fieldValue{}, fmt.Errorf("empty JSON value")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fieldValue{}, err
		}
		return fieldValue{value: s, display: s}, nil
	case 'n':
		return fieldValue{}, nil // null
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return fieldValue{}, err
		}
		fv := fieldValue{object: true}
		var err error
		if r, ok := obj["display_value"]; ok {
			fv.hasDisplay = true
			if fv.display, err = scalar(r); err != nil {
				return fieldValue{}, fmt.Errorf("display_value: %w", err)
			}
		}
		if r, ok := obj["value"]; ok {
			fv.hasValue = true
			if fv.value, err = scalar(r); err != nil {
				return fieldValue{}, fmt.Errorf("value: %w", err)
			}
		}
		if r, ok := obj["link"]; ok {
			fv.reference = true
			if fv.link, err = scalar(r); err != nil {
				return fieldValue{}, fmt.Errorf("link: %w", err)
			}
		}
		if !fv.hasDisplay && !fv.hasValue {
			return fieldValue{}, fmt.Errorf("object without display_value or value")
		}
		return fv, nil
	case '[':
		return fieldValue{}, fmt.Errorf("unexpected JSON array")
	}
	s, err := scalar(raw)
	if err != nil {
		return fieldValue{}, err
	}
	return fieldValue{value: s, display: s}, nil
}

// scalar reads a JSON string, null, number or boolean as text. ServiceNow
// sends strings; the others are tolerated, objects and arrays are not.
func scalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", fmt.Errorf("empty JSON value")
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case 'n':
		return "", nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", err
		}
		if b {
			return "true", nil
		}
		return "false", nil
	case '{', '[':
		return "", fmt.Errorf("unexpected nested JSON %s", string(raw[:1]))
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", err
	}
	return n.String(), nil
}

// flattenRecord turns one API record into source.Request fields, keyed by
// field name, choosing between value and display value by mode:
//
//   - "false": the value (a reference's sys_id);
//   - "true": the display value;
//   - "all": the value, except for a reference (an object with a link),
//     which gives its display value, like a CSV export does, and its sys_id
//     under "<field>.sys_id".
func flattenRecord(raw map[string]json.RawMessage, mode string) (map[string]string, error) {
	out := make(map[string]string, len(raw)+1)
	for name, r := range raw {
		fv, err := decodeField(r)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", name, err)
		}
		switch {
		case !fv.object:
			out[name] = fv.value
		case mode == "true":
			out[name] = pick(fv.display, fv.hasDisplay, fv.value)
		case mode == "all" && fv.reference:
			out[name] = pick(fv.display, fv.hasDisplay, fv.value)
			if _, explicit := raw[name+".sys_id"]; !explicit && fv.hasValue {
				out[name+".sys_id"] = fv.value
			}
		default:
			out[name] = pick(fv.value, fv.hasValue, fv.display)
		}
	}
	return out, nil
}

func pick(first string, has bool, fallback string) string {
	if has {
		return first
	}
	return fallback
}

// decodePage reads {"result":[...]} into flattened records.
func decodePage(body []byte, mode string) ([]map[string]string, error) {
	var p struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if len(p.Result) == 0 || bytes.Equal(bytes.TrimSpace(p.Result), []byte("null")) {
		return nil, fmt.Errorf("decode JSON: no \"result\" array in the answer")
	}
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal(p.Result, &recs); err != nil {
		return nil, fmt.Errorf("decode JSON: \"result\" is not an array of records: %w", err)
	}
	out := make([]map[string]string, 0, len(recs))
	for i, r := range recs {
		if r == nil {
			return nil, fmt.Errorf("decode JSON: record %d is null", i)
		}
		f, err := flattenRecord(r, mode)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, f)
	}
	return out, nil
}
