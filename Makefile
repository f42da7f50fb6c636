# `sudo make install-agent` installs the service as the roadmap says: `crucible-monitor install` does the work
# (user, /etc/crucible-monitor, /var/lib/crucible-monitor, monitor.yaml, alerts.yaml, the unit).
# Packaging: make install-agent ROOT=debian/tmp   Preview: make install-agent ARGS=--dry-run
CRUCIBLE_MONITOR ?= crucible-monitor
ROOT ?=
ARGS ?=

.PHONY: install-agent
install-agent:
	$(CRUCIBLE_MONITOR) install $(if $(ROOT),--root "$(ROOT)") $(ARGS)
