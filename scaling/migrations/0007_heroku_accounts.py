"""Heroku accounts (DESIGN section 9): the account `default` (HEROKU_API_KEY, never stored)
is made here, and every instance registered before accounts existed is attached to it."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

from django.utils import timezone


def default_account_attach(apps, schema_editor):
    HerokuAccount = apps.get_model("scaling", "HerokuAccount")
    RedisInstance = apps.get_model("scaling", "RedisInstance")
    account, _ = HerokuAccount.objects.get_or_create(name="default", defaults={"created_at": timezone.now()})
    RedisInstance.objects.filter(account__isnull=True).update(account=account)


class Migration(migrations.Migration):

    dependencies = [
        ('scaling', '0006_instance_workload_and_scale_down'),
    ]

    operations = [
        migrations.CreateModel(
            name='HerokuAccount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=64, unique=True, validators=[django.core.validators.RegexValidator('^[A-Za-z0-9_-]+$', "Use letters, digits, '-' and '_' only.")])),
                ('api_key_encrypted', models.TextField(blank=True, editable=False)),
                ('email', models.CharField(blank=True, editable=False, help_text="The account's e-mail, as Heroku said", max_length=254)),
                ('problem', models.CharField(blank=True, choices=[('', 'ok'), ('drained', 'rate limit drained'), ('refusing', 'key refused (401)')], default='', editable=False, max_length=10)),
                ('problem_detail', models.TextField(blank=True, editable=False)),
                ('problem_since', models.DateTimeField(blank=True, editable=False, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['name'],
                'constraints': [models.CheckConstraint(condition=models.Q(('name__regex', '^[A-Za-z0-9_-]+$')), name='account_name_charset')],
            },
        ),
        migrations.AddField(
            model_name='redisinstance',
            name='account',
            field=models.ForeignKey(blank=True, help_text='The Heroku account whose key manages this add-on (empty: default, HEROKU_API_KEY)', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='instances', to='scaling.herokuaccount'),
        ),
        migrations.RunPython(default_account_attach, migrations.RunPython.noop),
    ]
