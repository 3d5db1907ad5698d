.PHONY: run test lint vendor messages

# Start web, worker and (without an API key) the upstream simulator.
run:
	scripts/run.sh

# Run the whole test suite, browser tests included.
test:
	scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# Rebuild static/vendor/ from the pinned npm packages.
vendor:
	npm ci
	npm run build:vendor

# Extract and compile the translations.
messages:
	.venv/bin/python manage.py makemessages --locale zh_Hans --no-obsolete --ignore ".venv/*" --ignore "node_modules/*" --ignore "static/vendor/*" --ignore "tests/*"
	.venv/bin/python manage.py compilemessages --locale zh_Hans --ignore ".venv/*" --ignore "node_modules/*"
