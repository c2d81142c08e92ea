"""Operations: fetch, start and stop the local Kafka broker and schema registry; the `oms` command line."""

import warnings

from authlib.deprecate import AuthlibDeprecationWarning

# confluent-kafka's schema-registry client imports Authlib's httpx integration, which warns about its own
# rename on every import; Authlib forces "always" for its warnings, so ours must be added after its module.
warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)
