// Package deploy holds no code: it is the deployment examples (crontab,
// systemd units, Kubernetes CronJob, Dockerfile, example config) and the
// test that checks them.
package deploy
