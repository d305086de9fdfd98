"""`/healthz` and `/metrics`: no login; `/metrics` behind METRICS_TOKEN."""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from operations.health import health_check
from operations.prometheus import metrics_render


@require_safe
@never_cache
def healthz(request):
    health = health_check(now=timezone.now())
    return JsonResponse(health.as_dict(), status=200 if health.ok else 503)


def _bearer_token(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@require_safe
@never_cache
def metrics(request):
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off: METRICS_TOKEN is not set")
    if not hmac.compare_digest(_bearer_token(request).encode(), settings.METRICS_TOKEN.encode()):
        response = HttpResponse("a valid Authorization: Bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_LATEST)
