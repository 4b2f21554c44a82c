package main

import (
	"fmt"
	"strings"
	"time"

	dsync "github.com/duosync/duosync/sync"
)

// commonFlags are the flags shared by the commands that run the pipeline.
// Each names its environment variable; flags override the environment,
// which overrides the config file.
type commonFlags struct {
	configPath  string
	sources     []string
	encoding    string
	duoHost     string
	duoIKey     string
	duoSKeyFile string
	duoCAFile   string
	workers     int
	stateDir    string
	reportDir   string
	logFormat   string
	logLevel    string
	force       bool
}

func (c *commonFlags) register(f *flagSet) {
	f.String(&c.configPath, "c", "DUOSYNC_CONFIG", "", "config `FILE` (else ./duosync.yaml, else /etc/duosync/duosync.yaml)")
	f.Strings(&c.sources, "source", "", "CSV export `PATH`s or globs (repeatable), or \"servicenow\" for the Table API (default: source.csv)")
	f.String(&c.encoding, "encoding", "", "", "CSV encoding: utf-8 or windows-1252 (default: detect)")
	f.String(&c.duoHost, "duo-host", "DUO_HOST", "", "Duo API `HOST` or host:port")
	f.String(&c.duoIKey, "duo-ikey", "DUO_IKEY", "", "Duo integration key")
	f.String(&c.duoSKeyFile, "duo-skey-file", "DUO_SKEY_FILE", "", "`FILE` holding the Duo secret key (or set DUO_SKEY; never a flag value)")
	f.String(&c.duoCAFile, "duo-ca-file", "DUO_CA_FILE", "", "extra CA bundle `FILE` for Duo (TLS-inspecting proxies, the emulator)")
	f.Int(&c.workers, "workers", "DUOSYNC_WORKERS", 0, "apply pool width (default duo.workers, else 8)")
	f.String(&c.stateDir, "state-dir", "DUOSYNC_STATE_DIR", "", "state `DIR`: journal, lock, reports (default state_dir, $STATE_DIRECTORY, ~/.local/state/duosync)")
	f.String(&c.reportDir, "report-dir", "DUOSYNC_REPORT_DIR", "", "report `DIR` (default report.dir, else STATE_DIR/reports)")
	f.String(&c.logFormat, "log-format", "DUOSYNC_LOG_FORMAT", "", "log format: auto, text or json (default auto: text on a terminal)")
	f.String(&c.logLevel, "log-level", "DUOSYNC_LOG_LEVEL", "", "log level: debug, info, warn, error (default info)")
	f.Bool(&c.force, "force", "override the guards (max_creates, max_changes, max_invalid); the report says so")
}

// settings is everything a run needs, resolved from flags, environment and
// the config file, with the defaults of DESIGN.md filled in.
type settings struct {
	cfg *Config

	duoHost, duoIKey, duoSKey, duoCAFile string
	workers                              int
	readsPerMinute, writesPerMinute      int

	sourceKind string   // "csv" or "servicenow"
	csvPaths   []string // patterns
	encoding   string

	sn snSettings

	mapping dsync.Mapping
	filter  dsync.Filter
	policy  dsync.Policy
	force   bool

	stateDir  string // "" until resolved by statedir.Resolve
	reportDir string

	email emailSettings

	logFormat, logLevel string
}

type snSettings struct {
	instance, user, password, clientID, clientSecret, caFile string
	table, query, groupVariable                              string
	pageSize                                                 int
	incremental                                              bool
	workNotes                                                bool
	closeState                                               string
}

type emailSettings struct {
	addr, tls, user, password, caFile, from, when string
	to                                            []string
}

// errNoSource is the usage error of a run with nothing to read.
var errNoSource = usageErrorf("no source: give --source PATH (a ServiceNow CSV export) or --source servicenow, or set source.csv in the config")

// getenv returns the environment value, or the flag's value when the flag
// was given: the flag wins.
func pick(flagSet bool, flagValue, envValue, fileValue string) string {
	switch {
	case flagSet:
		return flagValue
	case envValue != "":
		return envValue
	}
	return fileValue
}

// resolveSettings loads the config and applies the environment and flags.
// needDuo says whether Duo credentials are required (plan, apply).
func resolveSettings(env Env, f *flagSet, c *commonFlags, needDuo bool) (*settings, error) {
	cfg, err := loadConfig(c.configPath, env.Getenv)
	if err != nil {
		return nil, err
	}
	get := env.Getenv
	allowInsecure := get("DUOSYNC_ALLOW_INSECURE_SECRET_FILES") == "1"
	s := &settings{cfg: cfg, force: c.force}

	s.duoHost = pick(f.Set("duo-host"), c.duoHost, get("DUO_HOST"), cfg.Duo.Host)
	s.duoIKey = pick(f.Set("duo-ikey"), c.duoIKey, get("DUO_IKEY"), cfg.Duo.IKey)
	s.duoCAFile = pick(f.Set("duo-ca-file"), c.duoCAFile, get("DUO_CA_FILE"), cfg.absFrom(cfg.Duo.CAFile))
	skeyFile := pick(f.Set("duo-skey-file"), c.duoSKeyFile, get("DUO_SKEY_FILE"), cfg.absFrom(cfg.Duo.SKeyFile))
	if needDuo {
		if s.duoSKey, err = readSecret("Duo secret key", "DUO_SKEY", skeyFile, get, allowInsecure); err != nil {
			return nil, err
		}
		var missing []string
		if s.duoHost == "" {
			missing = append(missing, "duo.host (DUO_HOST, --duo-host)")
		}
		if s.duoIKey == "" {
			missing = append(missing, "duo.ikey (DUO_IKEY, --duo-ikey)")
		}
		if s.duoSKey == "" {
			missing = append(missing, "the Duo secret key (DUO_SKEY, or duo.skey_file / --duo-skey-file)")
		}
		if len(missing) > 0 {
			return nil, usageErrorf("missing Duo settings: %s (%s)", strings.Join(missing, ", "), cfg.describe())
		}
	}
	s.workers = cfg.Duo.Workers
	if f.Set("workers") {
		s.workers = c.workers
	} else if v := get("DUOSYNC_WORKERS"); v != "" {
		if _, err := fmt.Sscan(v, &s.workers); err != nil {
			return nil, usageErrorf("DUOSYNC_WORKERS=%q: not a number", v)
		}
	}
	if s.workers == 0 {
		s.workers = 8
	}
	if s.workers < 1 || s.workers > 64 {
		return nil, usageErrorf("duo.workers: %d is out of range 1..64", s.workers)
	}
	s.readsPerMinute, s.writesPerMinute = cfg.Duo.ReadsPerMinute, cfg.Duo.WritesPerMinute

	// The source: --source paths, or "servicenow", else the config's CSV list.
	s.encoding = pick(f.Set("encoding"), c.encoding, "", cfg.Source.Encoding)
	switch {
	case len(c.sources) == 1 && c.sources[0] == "servicenow":
		s.sourceKind = "servicenow"
	case len(c.sources) > 0:
		s.sourceKind, s.csvPaths = "csv", c.sources
	default:
		s.sourceKind = "csv"
		for _, p := range cfg.Source.CSV {
			s.csvPaths = append(s.csvPaths, cfg.absFrom(p))
		}
	}
	if err := s.resolveServiceNow(cfg, get, allowInsecure); err != nil {
		return nil, err
	}

	if s.mapping, err = cfg.Mapping.toMapping(); err != nil {
		return nil, usageErrorf("config: %v", err)
	}
	s.filter = dsync.Filter{CatalogItems: cfg.Source.CatalogItems}
	if s.policy, err = cfg.Policy.toPolicy(); err != nil {
		return nil, usageErrorf("config: %v", err)
	}

	s.stateDir = pick(f.Set("state-dir"), c.stateDir, get("DUOSYNC_STATE_DIR"), cfg.absFrom(cfg.StateDir))
	s.reportDir = pick(f.Set("report-dir"), c.reportDir, get("DUOSYNC_REPORT_DIR"), cfg.absFrom(cfg.Report.Dir))
	s.logFormat = pick(f.Set("log-format"), c.logFormat, get("DUOSYNC_LOG_FORMAT"), cfg.Log.Format)
	s.logLevel = pick(f.Set("log-level"), c.logLevel, get("DUOSYNC_LOG_LEVEL"), cfg.Log.Level)

	if s.email, err = resolveEmail(cfg, get, allowInsecure); err != nil {
		return nil, err
	}
	return s, nil
}

// resolveEmail reads report.email, with SMTP_ADDR, SMTP_USER and the
// password from SMTP_PASSWORD or its file.
func resolveEmail(cfg *Config, get func(string) string, allowInsecure bool) (emailSettings, error) {
	e := cfg.Report.Email
	es := emailSettings{
		addr: pick(false, "", get("SMTP_ADDR"), e.SMTP), tls: e.TLS,
		user: pick(false, "", get("SMTP_USER"), e.User), caFile: cfg.absFrom(e.CAFile),
		from: e.From, to: e.To, when: e.When,
	}
	if es.addr == "" {
		return es, nil
	}
	var err error
	if es.password, err = readSecret("SMTP password", "SMTP_PASSWORD", pick(false, "", get("SMTP_PASSWORD_FILE"), cfg.absFrom(e.PasswordFile)), get, allowInsecure); err != nil {
		return es, err
	}
	if es.from == "" || len(es.to) == 0 {
		return es, usageErrorf("report.email: smtp is set, so from and to are needed too")
	}
	return es, nil
}

func (s *settings) resolveServiceNow(cfg *Config, get func(string) string, allowInsecure bool) error {
	sn := cfg.Source.ServiceNow
	s.sn = snSettings{
		instance: pick(false, "", get("SN_INSTANCE"), sn.Instance),
		user:     pick(false, "", get("SN_USER"), sn.User),
		clientID: pick(false, "", get("SN_CLIENT_ID"), sn.ClientID),
		caFile:   pick(false, "", get("SN_CA_FILE"), cfg.absFrom(sn.CAFile)),
		table:    sn.Table, query: sn.Query, groupVariable: sn.GroupVariable,
		pageSize: sn.PageSize, incremental: sn.Incremental,
		workNotes: sn.WriteBack.WorkNotes, closeState: sn.WriteBack.CloseState,
	}
	if s.sourceKind != "servicenow" {
		return nil
	}
	var err error
	if s.sn.password, err = readSecret("ServiceNow password", "SN_PASSWORD", pick(false, "", get("SN_PASSWORD_FILE"), cfg.absFrom(sn.PasswordFile)), get, allowInsecure); err != nil {
		return err
	}
	if s.sn.clientID != "" {
		if s.sn.clientSecret, err = readSecret("ServiceNow OAuth client secret", "SN_CLIENT_SECRET", pick(false, "", get("SN_CLIENT_SECRET_FILE"), cfg.absFrom(sn.ClientSecretFile)), get, allowInsecure); err != nil {
			return err
		}
	}
	if s.sn.instance == "" {
		return usageErrorf("--source servicenow: source.servicenow.instance (SN_INSTANCE) is not set")
	}
	if s.sn.user == "" && s.sn.clientID == "" {
		return usageErrorf("--source servicenow: set source.servicenow.user (SN_USER) or client_id (SN_CLIENT_ID)")
	}
	return nil
}

// toMapping overlays the configured mapping keys on the defaults.
func (m MappingConfig) toMapping() (dsync.Mapping, error) {
	out := dsync.DefaultMapping()
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&out.Username, m.Username)
	set(&out.Email, m.Email)
	set(&out.Realname, m.Realname)
	set(&out.Firstname, m.Firstname)
	set(&out.Lastname, m.Lastname)
	set(&out.Alias1, m.Alias1)
	set(&out.Alias2, m.Alias2)
	set(&out.Alias3, m.Alias3)
	set(&out.Alias4, m.Alias4)
	set(&out.Notes, m.Notes)
	set(&out.GroupsColumn, m.GroupsColumn)
	set(&out.GroupsSeparator, m.GroupsSeparator)
	if m.GroupsByItem != nil {
		out.GroupsByItem = m.GroupsByItem
	}
	if _, err := dsync.NewBuilder(out, dsync.Filter{}); err != nil {
		return out, err
	}
	return out, nil
}

// toPolicy overlays the configured policy keys on the defaults.
func (p PolicyConfig) toPolicy() (dsync.Policy, error) {
	out := dsync.DefaultPolicy()
	if p.Enroll != nil {
		out.Enroll = *p.Enroll
	}
	if p.EnrollValidSecs != nil {
		out.EnrollValidSecs = *p.EnrollValidSecs
	}
	if p.ResendAfter != nil {
		d, err := time.ParseDuration(*p.ResendAfter)
		if err != nil {
			return out, fmt.Errorf("policy.resend_after: %q is not a duration like 168h", *p.ResendAfter)
		}
		out.ResendAfter = d
	}
	if p.MaxResends != nil {
		out.MaxResends = *p.MaxResends
	}
	if p.CreateMissingGroups != nil {
		out.CreateMissingGroups = *p.CreateMissingGroups
	}
	if p.UpdateExisting != nil {
		out.UpdateExisting = *p.UpdateExisting
	}
	var err error
	if p.MaxCreates != nil {
		if out.MaxCreates, err = dsync.ParseLimit(*p.MaxCreates); err != nil {
			return out, fmt.Errorf("policy.max_creates: %v", err)
		}
	}
	if p.MaxChanges != nil {
		out.MaxChanges = dsync.Count(*p.MaxChanges)
	}
	if p.MaxInvalid != nil {
		if out.MaxInvalid, err = dsync.ParseLimit(*p.MaxInvalid); err != nil {
			return out, fmt.Errorf("policy.max_invalid: %v", err)
		}
	}
	return out, out.Validate()
}
