"""Forms of the platform's pages: sign-in, and the language a person reads the admin
center in."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from .audit_words import action_name
from .models import PersonRole


class SignInForm(AuthenticationForm):
    """Django's sign-in, which also turns away a person who holds no admin role: once the
    password is right, they learn why they cannot come in (an unknown e-mail or a wrong
    password still gets the usual answer, so nothing is revealed before)."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not PersonRole.objects.filter(person__user=user).exists():
            raise forms.ValidationError(
                _("You have no admin role in Credits Center; ask your Global Administrator."),
                code="no_admin_role",
            )


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)


class AuditFilterForm(forms.Form):
    """Settings > Audit log: who, what, when, and free text."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    actor = forms.TypedChoiceField(label=_("Person"), required=False, coerce=int,
                                   empty_value=None)
    action = forms.ChoiceField(label=_("Action"), required=False)
    start = forms.DateField(label=_("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}),
                            error_messages={"invalid": _("From: enter a date (YYYY-MM-DD).")})
    end = forms.DateField(label=_("To"), required=False,
                          widget=forms.DateInput(attrs={"type": "date"}),
                          error_messages={"invalid": _("To: enter a date (YYYY-MM-DD).")})

    def __init__(self, *args, people=(), actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = [("", _("Anyone"))] + [(p.pk, p.display_name or p.upn)
                                                               for p in people]
        self.fields["action"].choices = [("", _("Any action"))] + sorted(
            ((a, action_name(a)) for a in actions), key=lambda c: c[1].casefold())

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", _("To: the end date is before the start date."))
        return data
