"""Form fields shared by the credits pages (and notifications' settings)."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from ..money import PLAIN_DECIMAL, PLAIN_INTEGER


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)



class PlainIntegerField(forms.IntegerField):
    def to_python(self, value):
        if value not in self.empty_values and not PLAIN_INTEGER.fullmatch(str(value).strip()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class PlainDecimalField(forms.DecimalField):
    def to_python(self, value):
        if value not in self.empty_values and not PLAIN_DECIMAL.fullmatch(str(value).strip()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)
