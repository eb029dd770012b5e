# Shortcuts for people used to `make`; the package.json scripts are the source of truth.
#   make run            npm start (installs pnpm and the workspace when missing; api on the embedded database, :8090)
#   make test           npm test (also installs the Debian packages the suite needs and starts PostgreSQL and Redis, see README)
#   make docker-build   the image, tagged $(IMAGE)
#   make compose-up     docker compose: PostgreSQL, Redis, control plane, 3 relays, nginx, Prometheus, Grafana
IMAGE ?= streaming-service:latest

.PHONY: run test lint build docker-build compose-up compose-down

run:
	npm start

test:
	npm test

lint:
	pnpm lint && pnpm typecheck

build:
	pnpm build

docker-build:
	docker build -f deploy/Dockerfile -t $(IMAGE) .

compose-up:
	docker compose up -d --build

compose-down:
	docker compose down
