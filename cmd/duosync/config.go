package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/duosync/duosync/schedules"
)

// Config is the YAML configuration file (DESIGN.md, "Configuration"). Its
// keys are part of the contract. Secrets are never values here: only the
// paths of files that hold them (or the environment).
type Config struct {
	Duo       DuoConfig       `yaml:"duo"`
	Source    SourceConfig    `yaml:"source"`
	Mapping   MappingConfig   `yaml:"mapping"`
	Policy    PolicyConfig    `yaml:"policy"`
	Report    ReportConfig    `yaml:"report"`
	StateDir  string          `yaml:"state_dir"`
	Schedules []schedules.Job `yaml:"schedules"`
	Log       LogConfig       `yaml:"log"`
	Metrics   MetricsConfig   `yaml:"metrics"`

	path string // the file it was read from, "" when none
}

type DuoConfig struct {
	Host     string `yaml:"host"`
	IKey     string `yaml:"ikey"`
	SKeyFile string `yaml:"skey_file"`
	CAFile   string `yaml:"ca_file"`
	Workers  int    `yaml:"workers"`
	// ReadsPerMinute and WritesPerMinute pace duosync below Duo's
	// unpublished limits (about 200 page reads and 300 writes a minute).
	ReadsPerMinute  int `yaml:"reads_per_minute"`
	WritesPerMinute int `yaml:"writes_per_minute"`
}

type SourceConfig struct {
	CSV          []string          `yaml:"csv"`
	Encoding     string            `yaml:"encoding"`
	CatalogItems []string          `yaml:"catalog_items"`
	ServiceNow   ServiceNowConfig  `yaml:"servicenow"`
	Extra        map[string]string `yaml:"-"`
}

type ServiceNowConfig struct {
	Instance         string          `yaml:"instance"`
	User             string          `yaml:"user"`
	PasswordFile     string          `yaml:"password_file"`
	ClientID         string          `yaml:"client_id"`
	ClientSecretFile string          `yaml:"client_secret_file"`
	CAFile           string          `yaml:"ca_file"`
	Table            string          `yaml:"table"`
	Query            string          `yaml:"query"`
	GroupVariable    string          `yaml:"group_variable"`
	PageSize         int             `yaml:"page_size"`
	Incremental      bool            `yaml:"incremental"`
	WriteBack        WriteBackConfig `yaml:"write_back"`
}

type WriteBackConfig struct {
	WorkNotes  bool   `yaml:"work_notes"`
	CloseState string `yaml:"close_state"`
}

type MappingConfig struct {
	Username        *string             `yaml:"username"`
	Email           *string             `yaml:"email"`
	Realname        *string             `yaml:"realname"`
	Firstname       *string             `yaml:"firstname"`
	Lastname        *string             `yaml:"lastname"`
	Alias1          *string             `yaml:"alias1"`
	Alias2          *string             `yaml:"alias2"`
	Alias3          *string             `yaml:"alias3"`
	Alias4          *string             `yaml:"alias4"`
	Notes           *string             `yaml:"notes"`
	GroupsColumn    *string             `yaml:"groups_column"`
	GroupsSeparator *string             `yaml:"groups_separator"`
	GroupsByItem    map[string][]string `yaml:"groups_by_item"`
}

type PolicyConfig struct {
	Enroll              *bool   `yaml:"enroll"`
	EnrollValidSecs     *int    `yaml:"enroll_valid_secs"`
	ResendAfter         *string `yaml:"resend_after"`
	MaxResends          *int    `yaml:"max_resends"`
	CreateMissingGroups *bool   `yaml:"create_missing_groups"`
	UpdateExisting      *bool   `yaml:"update_existing"`
	MaxCreates          *string `yaml:"max_creates"`
	MaxChanges          *int    `yaml:"max_changes"`
	MaxInvalid          *string `yaml:"max_invalid"`
}

type ReportConfig struct {
	Dir   string      `yaml:"dir"`
	Email EmailConfig `yaml:"email"`
}

type EmailConfig struct {
	SMTP         string   `yaml:"smtp"`
	TLS          string   `yaml:"tls"`
	User         string   `yaml:"user"`
	PasswordFile string   `yaml:"password_file"`
	CAFile       string   `yaml:"ca_file"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	When         string   `yaml:"when"`
}

// MetricsConfig says where to write the Prometheus textfile that
// node_exporter's textfile collector reads ("" for none).
type MetricsConfig struct {
	Textfile string `yaml:"textfile"`
}

type LogConfig struct {
	Format string `yaml:"format"` // auto | text | json
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// findConfig returns the config file to read: -c FILE, else
// $DUOSYNC_CONFIG, else ./duosync.yaml, else /etc/duosync/duosync.yaml.
// An explicitly named file must exist; the default places may be absent.
func findConfig(flagPath string, env func(string) string) (path string, explicit bool) {
	if flagPath != "" {
		return flagPath, true
	}
	if p := env("DUOSYNC_CONFIG"); p != "" {
		return p, true
	}
	for _, p := range []string{"duosync.yaml", "/etc/duosync/duosync.yaml"} {
		if _, err := os.Stat(p); err == nil {
			return p, false
		}
	}
	return "", false
}

// loadConfig reads and strictly decodes the config file: unknown keys and
// wrong types are errors that name the file, line and key.
func loadConfig(flagPath string, env func(string) string) (*Config, error) {
	path, explicit := findConfig(flagPath, env)
	cfg := &Config{}
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return cfg, nil
		}
		return nil, usageErrorf("config: %v", err)
	}
	if err := decodeConfig(data, cfg); err != nil {
		return nil, usageErrorf("config %s: %v", path, err)
	}
	cfg.path = path
	return cfg, nil
}

func decodeConfig(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file is an empty config
		}
		return cleanYAMLError(err, data)
	}
	// A second document (after ---) would otherwise be silently ignored.
	var extra yaml.Node
	if err := dec.Decode(&extra); err != nil && !errors.Is(err, io.EOF) {
		return cleanYAMLError(err, data)
	} else if err == nil && !emptyDocument(&extra) {
		return fmt.Errorf("line %d: a second YAML document (after ---): duosync reads only one; merge them", extra.Line)
	}
	return nil
}

// emptyDocument reports a document holding nothing, as after a trailing ---.
func emptyDocument(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// cleanYAMLError drops the library's "yaml: unmarshal errors:" preamble so
// that the message reads "line 3: field nme not found in type main.DuoConfig"
// as "line 3: unknown key nme (in duo)".
func cleanYAMLError(err error, data []byte) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var msgs []string
	for _, e := range te.Errors {
		msg := withKey(e, data)
		if i := strings.Index(msg, "field "); i >= 0 && strings.Contains(msg, " not found in type ") {
			name := msg[i+len("field ") : strings.Index(msg, " not found")]
			section := yamlSection(msg[strings.Index(msg, " not found in type ")+len(" not found in type "):])
			msg = msg[:i] + "unknown key " + name
			if section != "" {
				msg += " (in " + section + ")"
			}
		}
		msgs = append(msgs, msg)
	}
	return errors.New(strings.Join(msgs, "; "))
}

// withKey adds the key of the line a type error names: "line 2: cannot
// unmarshal !!str `many` into int" becomes "... (key max_changes)".
func withKey(msg string, data []byte) string {
	var n int
	if _, err := fmt.Sscanf(msg, "line %d:", &n); err != nil || !strings.Contains(msg, "cannot unmarshal") {
		return msg
	}
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return msg
	}
	line := strings.TrimSpace(lines[n-1])
	line = strings.TrimSpace(strings.TrimPrefix(line, "- "))
	if key, _, ok := strings.Cut(line, ":"); ok && key != "" && len(key) < 80 {
		return msg + " (key " + strings.Trim(key, `"'`) + ")"
	}
	return msg
}

// yamlSection turns a Go type name from a yaml error into the config section.
func yamlSection(goType string) string {
	switch strings.TrimPrefix(goType, "main.") {
	case "Config":
		return "top level"
	case "DuoConfig":
		return "duo"
	case "SourceConfig":
		return "source"
	case "ServiceNowConfig":
		return "source.servicenow"
	case "WriteBackConfig":
		return "source.servicenow.write_back"
	case "MappingConfig":
		return "mapping"
	case "PolicyConfig":
		return "policy"
	case "ReportConfig":
		return "report"
	case "EmailConfig":
		return "report.email"
	case "LogConfig":
		return "log"
	case "MetricsConfig":
		return "metrics"
	}
	return goType
}

// readSecret returns a secret from the environment variable, else from the
// file. The secret file must not be readable by group or others (it is an
// admin credential), unless allowInsecure. Errors name the file or variable,
// never the secret.
func readSecret(what, envName, file string, env func(string) string, allowInsecure bool) (string, error) {
	if v := env(envName); v != "" {
		return strings.TrimSpace(v), nil
	}
	if file == "" {
		return "", nil
	}
	file = os.Expand(file, env)
	fi, err := os.Stat(file)
	if err != nil {
		return "", usageErrorf("%s file: %v", what, err)
	}
	if fi.Mode().Perm()&0o077 != 0 && !allowInsecure {
		return "", usageErrorf("%s file %s is readable by group or others (mode %04o): run chmod 600 %s, or set DUOSYNC_ALLOW_INSECURE_SECRET_FILES=1", what, file, fi.Mode().Perm(), file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", usageErrorf("%s file: %v", what, err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", usageErrorf("%s file %s is empty", what, file)
	}
	return s, nil
}

// absFrom resolves a path named in the config relative to the config file's directory.
func (c *Config) absFrom(p string) string {
	if p == "" || filepath.IsAbs(p) || c.path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.path), p)
}

func (c *Config) describe() string {
	if c.path == "" {
		return "no config file found"
	}
	return fmt.Sprintf("config %s", c.path)
}
