from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """The record is written by the app only; people review it."""

    show_full_result_count = False  # a COUNT(*) over millions of samples on every page is not worth it

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
