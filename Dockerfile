# Build: the same toolchain the project is developed with.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin model-registry

# Run: a slim image, a non-root user, the data in a volume.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/model-registry --shell /usr/sbin/nologin registry \
    && mkdir -p /var/lib/model-registry \
    && chown registry /var/lib/model-registry
COPY --from=build /src/target/release/model-registry /usr/local/bin/model-registry
USER registry
ENV MR_DATA_DIR=/var/lib/model-registry \
    MR_LISTEN=0.0.0.0:8080
VOLUME ["/var/lib/model-registry"]
EXPOSE 8080
ENTRYPOINT ["model-registry"]
CMD ["serve"]
