# Shortcuts for people used to `make`; the pnpm scripts are the source of truth.
#   make run            pnpm install && pnpm start (api on the embedded database, :8090)
#   make test           pnpm install && pnpm test (needs PostgreSQL and Redis, see README)
#   make docker-build   the image, tagged $(IMAGE)
#   make compose-up     docker compose: PostgreSQL, Redis, control plane, 3 relays, nginx, Prometheus, Grafana
IMAGE ?= streaming-service:latest

.PHONY: run test lint build docker-build compose-up compose-down

run:
	pnpm install && pnpm start

test:
	pnpm install && pnpm test

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
