"""The Day 50 lesson's own code (the course's source, "Day 50 · CBAM 注意力机制"), copied as it is:
its classes (sections 2-5) and its training and plotting functions (section 6), the one reference
that the tests, the benchmarks and the checkers' tests hold the package against (same parameters in
the same order, same outputs given the same weights), and from which the lessons' claims about that
lesson's code are checked (``tests/test_day50_facts.py``).

One change: ``CBAM_CNN`` takes a ``width`` (the lesson's is 64, the default), so that tests and
smoke benchmarks can build a small copy; its literal 64, 128 and 256 became ``w``, ``2 * w`` and
``4 * w``. The maths is the lesson's, operation for operation; its comments are left out. Read it
beside ``attention.py``. ``train`` returns the test accuracy of the last epoch and steps the
scheduler on the test loss, as the lesson's does.
"""
import matplotlib.pyplot as plt
import torch
import torch.nn as nn


class ChannelAttention(nn.Module):
    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(in_channels, in_channels // ratio, bias=False),
            nn.ReLU(),
            nn.Linear(in_channels // ratio, in_channels, bias=False)
        )
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        b, c, h, w = x.shape
        avg_out = self.fc(self.avg_pool(x).view(b, c))
        max_out = self.fc(self.max_pool(x).view(b, c))
        attention = self.sigmoid(avg_out + max_out).view(b, c, 1, 1)
        return x * attention


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        pool_out = torch.cat([avg_out, max_out], dim=1)
        attention = self.conv(pool_out)
        return x * self.sigmoid(attention)


class CBAM(nn.Module):
    def __init__(self, in_channels, ratio=16, kernel_size=7):
        super().__init__()
        self.channel_attention = ChannelAttention(in_channels, ratio)
        self.spatial_attention = SpatialAttention(kernel_size)

    def forward(self, x):
        x = self.channel_attention(x)
        x = self.spatial_attention(x)
        return x


class CBAM_CNN(nn.Module):
    def __init__(self, num_classes=10, width=64):
        super().__init__()
        w = width
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, w, kernel_size=3, padding=1),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w, kernel_size=3, padding=1),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True)
        )
        self.cbam1 = CBAM(w)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Sequential(
            nn.Conv2d(w, 2 * w, kernel_size=3, padding=1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 2 * w, kernel_size=3, padding=1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True)
        )
        self.cbam2 = CBAM(2 * w)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Sequential(
            nn.Conv2d(2 * w, 4 * w, kernel_size=3, padding=1),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, kernel_size=3, padding=1),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True)
        )
        self.cbam3 = CBAM(4 * w)
        self.pool3 = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(4 * w, num_classes)
        )

    def forward(self, x):
        x = self.pool1(self.cbam1(self.conv1(x)))
        x = self.pool2(self.cbam2(self.conv2(x)))
        x = self.pool3(self.cbam3(self.conv3(x)))
        x = x.view(x.size(0), -1)
        x = self.classifier(x)
        return x


def train(model, train_loader, test_loader, criterion, optimizer, scheduler, device, epochs):
    train_acc_history, test_acc_history = [], []
    train_loss_history, test_loss_history = [], []
    all_iter_losses, iter_indices = [], []
    global_iter = 0

    for epoch in range(epochs):
        model.train()
        running_loss, correct, total = 0.0, 0, 0

        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()

            iter_loss = loss.item()
            all_iter_losses.append(iter_loss)
            iter_indices.append(global_iter)
            global_iter += 1
            running_loss += iter_loss

            _, predicted = output.max(1)
            total += target.size(0)
            correct += predicted.eq(target).sum().item()

            if (batch_idx + 1) % 100 == 0:
                print(f'Epoch: {epoch+1}/{epochs} | Batch: {batch_idx+1}/{len(train_loader)} | Loss: {iter_loss:.4f}')

        epoch_train_loss = running_loss / len(train_loader)
        epoch_train_acc = 100. * correct / total
        train_acc_history.append(epoch_train_acc)
        train_loss_history.append(epoch_train_loss)

        model.eval()
        test_loss, correct_test, total_test = 0, 0, 0

        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                output = model(data)
                test_loss += criterion(output, target).item()
                _, predicted = output.max(1)
                total_test += target.size(0)
                correct_test += predicted.eq(target).sum().item()

        epoch_test_loss = test_loss / len(test_loader)
        epoch_test_acc = 100. * correct_test / total_test
        test_acc_history.append(epoch_test_acc)
        test_loss_history.append(epoch_test_loss)

        scheduler.step(epoch_test_loss)
        print(f'Epoch {epoch+1}/{epochs} | Train Acc: {epoch_train_acc:.2f}% | Test Acc: {epoch_test_acc:.2f}%')

    plot_iter_losses(all_iter_losses, iter_indices)
    plot_epoch_metrics(train_acc_history, test_acc_history, train_loss_history, test_loss_history)
    return epoch_test_acc


def plot_iter_losses(losses, indices):
    plt.figure(figsize=(10, 4))
    plt.plot(indices, losses, 'b-', alpha=0.7)
    plt.xlabel('Iteration')
    plt.ylabel('Loss')
    plt.title('Training Loss')
    plt.grid(True)
    plt.show()


def plot_epoch_metrics(train_acc, test_acc, train_loss, test_loss):
    epochs = range(1, len(train_acc) + 1)
    plt.figure(figsize=(12, 4))

    plt.subplot(1, 2, 1)
    plt.plot(epochs, train_acc, 'b-', label='Train')
    plt.plot(epochs, test_acc, 'r-', label='Test')
    plt.xlabel('Epoch')
    plt.ylabel('Accuracy (%)')
    plt.legend()
    plt.grid(True)

    plt.subplot(1, 2, 2)
    plt.plot(epochs, train_loss, 'b-', label='Train')
    plt.plot(epochs, test_loss, 'r-', label='Test')
    plt.xlabel('Epoch')
    plt.ylabel('Loss')
    plt.legend()
    plt.grid(True)

    plt.tight_layout()
    plt.show()
