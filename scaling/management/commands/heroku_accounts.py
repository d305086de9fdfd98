import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from scaling.services.accounts import AccountError, account_add, account_remove, accounts_table


class Command(BaseCommand):
    help = ("Heroku accounts whose keys manage instances: add NAME (the key from standard input or a hidden "
            "prompt, checked with Heroku first), list, remove NAME. The account 'default' is HEROKU_API_KEY.")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="add an account; its API key is read from stdin or a hidden prompt")
        add.add_argument("name")
        add.add_argument("--replace", action="store_true", help="give an existing account a new key")
        actions.add_parser("list", help="the accounts, their instances and state (never the keys)")
        remove = actions.add_parser("remove", help="remove an account no instance uses")
        remove.add_argument("name")

    def handle(self, *args, action, **options):
        try:
            if action == "add":
                account = account_add(name=options["name"], api_key=_read_key(options["name"]), replace=options["replace"])
                self.stdout.write(f"account {account.name} saved (Heroku user {account.email}); key stored encrypted")
            elif action == "remove":
                account_remove(name=options["name"])
                self.stdout.write(f"account {options['name']} removed")
            else:
                self.stdout.write("NAME\tAPI KEY\tHEROKU USER\tINSTANCES\tSTATE")
                for row in accounts_table():
                    self.stdout.write(f"{row.name}\t{row.key}\t{row.email}\t{row.instances} instance(s)\t{row.state}")
        except AccountError as error:
            raise CommandError(str(error)) from None


def _read_key(name):
    """Never from the command line (it would sit in the shell history and the process list)."""
    if sys.stdin.isatty():
        return getpass.getpass(f"Heroku API key for account {name} (not shown): ")
    return sys.stdin.readline().strip()
