# Confab in a container: the app and the server built in one stage, a small runtime image.
#   docker build -t confab .
#   docker run -p 3000:3000 -v confab-data:/data confab
# compose.yaml runs the same image as a three-node cluster.

FROM rust:1.95-bookworm AS build
# Node.js for wasm-opt (npm's binaryen); the rest of the tools come from crates.io.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV CONFAB_TOOLS=/tools CARGO_TARGET_DIR=/src/target
COPY scripts/ scripts/
COPY Cargo.toml Cargo.lock ./
RUN scripts/bootstrap.sh run
COPY . .
RUN scripts/build-app.sh \
 && cargo build --locked --release -p confab-server \
 && cp target/release/confab-server /confab-server \
 && cp -r target/site /site

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /data --create-home confab
COPY --from=build /confab-server /usr/local/bin/confab-server
COPY --from=build /site /srv/confab/site
USER confab
WORKDIR /data
ENV CONFAB_ADDR=0.0.0.0:3000 \
    CONFAB_DATA_DIR=/data \
    CONFAB_SITE_DIR=/srv/confab/site
EXPOSE 3000
VOLUME /data
ENTRYPOINT ["/usr/local/bin/confab-server"]
