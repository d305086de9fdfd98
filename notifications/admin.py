from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from autoscaler.admin_utils import ReadOnlyAdmin
from notifications.events import EVENT_CHOICES
from notifications.models import AlertChannel, Delivery, DeliveryAttempt, Notification
from notifications.services import alert_test_send


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("id", "channel", "status", "attempts", "next_try_at", "finished_at", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "instance", "event", "subject", "sent_at")
    list_filter = ("event",)
    search_fields = ("instance__name", "subject")
    list_select_related = ("instance",)
    ordering = ("-created_at",)
    exclude = ("data",)
    inlines = [DeliveryInline]


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("at", "outcome", "status_code", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "alert", "channel", "status", "attempts", "last_error", "next_try_at", "finished_at")
    list_filter = ("status", "channel")
    search_fields = ("alert__subject", "id")
    list_select_related = ("alert", "channel")
    ordering = ("-created_at",)
    inlines = [AttemptInline]


class AlertChannelForm(forms.ModelForm):
    """The URL and the secret are write-only: shown masked, kept when left empty."""

    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
                                       help_text="none ticked: every event")
    new_url = forms.URLField(required=False, label="URL", assume_scheme="https",
                             widget=forms.PasswordInput(render_value=False),
                             help_text="Slack or webhook: the URL to POST to (a secret: never shown; empty keeps it)")
    new_secret = forms.CharField(required=False, label="signing secret", widget=forms.PasswordInput(render_value=False),
                                 help_text="webhook: HMAC-SHA256 key of X-Autoscaler-Signature (never shown; empty keeps it)")

    class Meta:
        model = AlertChannel
        fields = ("name", "kind", "enabled", "events", "instances", "recipients")

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind in (AlertChannel.Kind.SLACK, AlertChannel.Kind.WEBHOOK) and not (cleaned.get("new_url") or self.instance.url_encrypted):
            self.add_error("new_url", "a Slack or webhook channel needs a URL")
        return cleaned

    def save(self, commit=True):
        channel = super().save(commit=False)
        if self.cleaned_data.get("new_url"):
            channel.url = self.cleaned_data["new_url"]
        if self.cleaned_data.get("new_secret"):
            channel.secret = self.cleaned_data["new_secret"]
        if commit:
            channel.save()
            self.save_m2m()
        return channel


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    form = AlertChannelForm
    list_display = ("name", "kind", "enabled", "subscribed_events", "masked_url", "signed", "env_var")
    list_filter = ("kind", "enabled")
    readonly_fields = ("masked_url", "signed", "env_var")
    filter_horizontal = ("instances",)
    actions = ["send_test_alert"]

    @admin.display(description="events")
    def subscribed_events(self, channel):
        return ", ".join(channel.events) if channel.events else "every event"

    @admin.display(description="URL")
    def masked_url(self, channel):
        return channel.masked_url or "—"

    @admin.display(description="signed", boolean=True)
    def signed(self, channel):
        return bool(channel.secret_encrypted)

    @admin.action(description="Send a test alert")
    def send_test_alert(self, request, queryset):
        for channel in queryset:
            _, deliveries = alert_test_send(now=timezone.now(), channel_name=channel.name)
            self.message_user(request, f"test alert queued for {channel.name} (delivery {deliveries[0].pk})",
                              messages.SUCCESS)
